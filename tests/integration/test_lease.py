"""The leader lease against a real redis-server: SET NX PX, a growing epoch, compare-and-set renew,
compare-and-delete release with a pub/sub notice, and the local monotonic-clock validity of Lease."""

from __future__ import annotations

from datetime import timedelta

import pytest
from helpers import FakeClock
from support import expire_lease, make_store, take_lease

from redis_server import wait_for
from scheduler.keys import Token
from scheduler.lease import Change, Lease

TTL = timedelta(seconds=30)


def epoch_counter(store) -> int:
    return int(store.client.get(store.keys.epoch))


# -- acquire ------------------------------------------------------------------------------------


def test_only_one_replica_takes_the_lease_and_the_others_learn_the_holder(store):
    assert store.acquire("r1", TTL) == (Token(1, "r1"), None)
    assert store.acquire("r2", TTL) == (None, Token(1, "r1"))
    assert store.acquire("r1", TTL) == (None, Token(1, "r1")), "even the holder cannot take it twice"
    assert store.holder() == Token(1, "r1")
    assert store.client.get(store.keys.lease) == b"1:r1"
    assert epoch_counter(store) == 1, "a refused acquire must not spend an epoch"


def test_acquire_sets_the_ttl_and_renew_sets_it_again(store):
    token = take_lease(store, "r1", timedelta(seconds=10))
    assert 9_000 < store.client.pttl(store.keys.lease) <= 10_000

    assert store.renew(token, timedelta(seconds=40))
    assert 39_000 < store.client.pttl(store.keys.lease) <= 40_000
    assert store.holder() == token, "renew must not change the value"


def test_a_lease_nobody_renews_expires_by_its_ttl(store):
    store.acquire("r1", timedelta(milliseconds=300))
    wait_for(lambda: store.holder() is None, timeout=5, message="the lease to expire on its own")
    assert store.acquire("r2", TTL) == (Token(2, "r2"), None)


def test_the_epoch_only_grows_across_acquire_release_and_expiry(store):
    epochs = []
    for replica in ("r1", "r2", "r1", "r3"):
        token = take_lease(store, replica)
        epochs.append(token.epoch)
        assert store.acquire("someone-else", TTL)[0] is None
        if replica == "r2":
            expire_lease(store)
        else:
            assert store.release(token)
    assert epochs == sorted(set(epochs)), f"epochs must strictly grow: {epochs}"
    assert epochs == [1, 2, 3, 4]
    assert epoch_counter(store) == 4
    assert store.client.pttl(store.keys.epoch) == -1, "the epoch counter must never expire"


def test_a_second_store_on_the_same_prefix_sees_the_same_lease(redis_server, store):
    other = make_store(redis_server.client())
    token = take_lease(store, "r1")
    assert other.acquire("r2", TTL) == (None, token)
    assert other.holder() == token
    other.client.close()


# -- renew --------------------------------------------------------------------------------------


def test_renew_succeeds_for_the_holder_and_fails_for_a_stale_token_after_a_takeover(store):
    old = take_lease(store, "r1")
    assert store.renew(old, TTL)

    expire_lease(store)
    new = take_lease(store, "r2", timedelta(seconds=5))
    assert not store.renew(old, timedelta(seconds=60))
    assert store.holder() == new
    assert store.client.pttl(store.keys.lease) <= 5_000, "a stale renew must not extend the new lease"


def test_a_replica_back_under_the_same_id_cannot_renew_with_its_old_epoch(store):
    old = take_lease(store, "r1")
    expire_lease(store)
    new = take_lease(store, "r1")
    assert new != old
    assert not store.renew(old, TTL)
    assert store.renew(new, TTL)


def test_renew_of_an_expired_lease_fails_and_does_not_recreate_it(store):
    token = take_lease(store, "r1")
    expire_lease(store)
    assert not store.renew(token, TTL)
    assert store.holder() is None


# -- release ------------------------------------------------------------------------------------


def test_release_is_compare_and_delete(store):
    old = take_lease(store, "r1")
    expire_lease(store)
    new = take_lease(store, "r2")

    assert not store.release(old), "a stale token must not release"
    assert store.holder() == new, "... nor delete the new holder's lease"

    assert store.release(new)
    assert store.holder() is None
    assert not store.release(new), "a second release finds nothing to release"


def test_release_publishes_the_token_on_the_released_channel(redis_server, store):
    listener = redis_server.client().pubsub()
    listener.subscribe(store.keys.released)
    confirmation = wait_for(lambda: listener.get_message(timeout=0.1), timeout=5, message="the subscription")
    assert confirmation["type"] == "subscribe"

    old = take_lease(store, "r1")
    expire_lease(store)
    new = take_lease(store, "r2")
    assert not store.release(old)  # refused: must publish nothing
    assert store.release(new)

    message = wait_for(lambda: listener.get_message(timeout=0.1), timeout=5, message="the release notice")
    assert message["type"] == "message"
    assert message["channel"].decode() == store.keys.released
    assert message["data"].decode() == str(new)
    assert listener.get_message(timeout=0.3) is None, "only the real release is announced"
    listener.close()


def test_the_released_channel_is_not_a_key(store):
    take_lease(store, "r1")
    store.release(Token(1, "r1"))
    assert not store.client.exists(store.keys.released)


# -- Lease: the local view with its own monotonic clock ----------------------------------------


def test_lease_is_held_until_ttl_minus_margin_by_its_own_clock_even_while_redis_keeps_it(store):
    clock = FakeClock()
    lease = Lease(store, "r1", timedelta(seconds=10), clock=clock)
    assert lease.margin == 1.0

    assert lease.acquire() is Change.ACQUIRED
    assert lease.token == Token(1, "r1") and lease.epoch == 1
    assert lease.held

    clock.advance(8.999)
    assert lease.held
    clock.advance(0.001)  # 10 s - 1 s margin since the acquire was sent
    assert not lease.held
    assert lease.remaining == 0.0
    assert store.holder() == Token(1, "r1"), "Redis still has the key: only the local clock says no"
    assert store.client.pttl(store.keys.lease) > 0

    assert lease.expire_if_stale() is Change.LOST
    assert lease.token is None


def test_lease_validity_counts_from_when_the_request_was_sent(store):
    clock = FakeClock()
    lease = Lease(store, "r1", timedelta(seconds=10), clock=clock)
    slow_store_acquire = store.acquire

    def acquire_taking_three_seconds(*args):
        result = slow_store_acquire(*args)
        clock.advance(3.0)
        return result

    store.acquire = acquire_taking_three_seconds
    assert lease.acquire() is Change.ACQUIRED
    assert lease.remaining == pytest.approx(6.0), "10 s - 1 s margin - the 3 s the call took"
    clock.advance(5.999)
    assert lease.held
    clock.advance(0.001)
    assert not lease.held


def test_small_ttls_get_a_fifth_as_margin(store):
    clock = FakeClock()
    lease = Lease(store, "r1", timedelta(seconds=2), clock=clock)
    assert lease.margin == pytest.approx(0.4)
    lease.acquire()
    clock.advance(1.599)
    assert lease.held
    clock.advance(0.001)
    assert not lease.held


def test_lease_renew_extends_the_local_validity_and_redis_ttl(store):
    clock = FakeClock()
    lease = Lease(store, "r1", timedelta(seconds=10), clock=clock)
    lease.acquire()
    clock.advance(8.0)
    assert lease.renew() is Change.RENEWED
    clock.advance(8.999)
    assert lease.held
    assert 9_000 < store.client.pttl(store.keys.lease) <= 10_000


def test_lease_renew_after_a_takeover_is_lost_and_stops_holding(store):
    clock = FakeClock()
    lease = Lease(store, "r1", timedelta(seconds=10), clock=clock)
    lease.acquire()
    expire_lease(store)
    rival = Lease(store, "r2", timedelta(seconds=10), clock=clock)
    assert rival.acquire() is Change.ACQUIRED
    assert rival.epoch == 2

    assert lease.renew() is Change.LOST
    assert not lease.held and lease.token is None
    assert store.holder() == Token(2, "r2")


def test_a_standby_lease_reports_the_holder_once(store):
    clock = FakeClock()
    leader = Lease(store, "r1", timedelta(seconds=10), clock=clock)
    standby = Lease(store, "r2", timedelta(seconds=10), clock=clock)
    assert leader.acquire() is Change.ACQUIRED
    assert standby.acquire() is Change.STANDING_BY
    assert standby.holder == Token(1, "r1") and not standby.held
    assert standby.acquire() is Change.UNCHANGED


def test_lease_release_frees_redis_and_a_lost_lease_release_says_so(store):
    clock = FakeClock()
    lease = Lease(store, "r1", timedelta(seconds=10), clock=clock)
    lease.acquire()
    assert lease.release() is Change.RELEASED
    assert store.holder() is None and not lease.held

    lease.acquire()
    expire_lease(store)
    take_lease(store, "r2")
    assert lease.release() is Change.LOST
    assert store.holder() == Token(3, "r2")
