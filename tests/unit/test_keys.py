"""The lease token as a value, and the one backoff rule every retry loop uses."""

from __future__ import annotations

import pytest

from scheduler.backoff import backoff
from scheduler.keys import Keys, Token


def test_a_token_is_written_and_read_back_in_the_form_redis_holds():
    token = Token(42, "host-7")
    assert str(token) == "42:host-7"
    assert Token.parse("42:host-7") == token == Token.parse(b"42:host-7")
    assert Token.parse("3:ip-10-0-0-1:9").replica == "ip-10-0-0-1:9", "only the first colon separates"


def test_tokens_order_by_epoch_first():
    assert Token(2, "a") > Token(1, "z")


def test_every_key_shares_the_prefix_and_its_hash_tag():
    keys = Keys("{scheduler}")
    assert keys.lease == "{scheduler}:lease" and keys.seen("nightly", 1000) == "{scheduler}:seen:nightly:1000"
    assert keys.stream("reports") == "{scheduler}:queue:reports" and keys.outbox("exports") == "{scheduler}:outbox:exports"


@pytest.mark.parametrize(("failures", "low", "high"), [(1, 0.5, 1.0), (2, 1.0, 2.0), (3, 2.0, 4.0), (9, 2.5, 5.0)],
                         ids=["first", "second", "third", "capped"])
def test_backoff_doubles_up_to_its_cap_with_a_random_factor_of_half_to_one(failures, low, high):
    waits = [backoff(failures, base=1.0, cap=5.0) for _ in range(200)]
    assert all(low <= wait < high for wait in waits)
    assert max(waits) - min(waits) > 0, "replicas that failed together do not come back together"


def test_backoff_stays_at_its_cap_however_long_the_trouble_lasts():
    assert 2.5 <= backoff(5_000, base=1.0, cap=5.0) < 5.0, "an outage of hours must not overflow"
