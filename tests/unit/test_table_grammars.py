"""The table's grammars on their own, without a schedules.toml: one entry or value in, one result out."""

from __future__ import annotations

from typing import Any

import pytest

from scheduler.table import QueueSpec, QueueType
from scheduler.table._queues import keys_starting, queue_spec
from scheduler.table._words import Counter

Problems = list[tuple[str | None, str]]


def recorder() -> tuple[Counter, Problems]:
    """A counting report that keeps each (key, message) it is given."""
    problems: Problems = []
    return Counter(lambda key, message: problems.append((key, message))), problems


# -- [queues.NAME]: _queues ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "spec"),
    [
        pytest.param({}, QueueSpec("q"), id="no-type-is-a-redis-stream"),
        pytest.param({"stream": "jobs:{app}"}, QueueSpec("q", name="jobs:{app}"), id="redis-stream-with-its-stream"),
        pytest.param(
            {"type": "sidekiq", "queue": "low", "active_job": True, "retry": 3},
            QueueSpec("q", QueueType.SIDEKIQ, name="low", active_job=True, retry=3),
            id="sidekiq-retry-3",
        ),
        pytest.param(
            {"type": "sidekiq", "retry": False},
            QueueSpec("q", QueueType.SIDEKIQ, retry=False),
            id="sidekiq-retry-false",
        ),
        pytest.param(
            {"type": "celery", "redis_url_env": "CELERY_REDIS_URL"},
            QueueSpec("q", QueueType.CELERY, redis_url_env="CELERY_REDIS_URL"),
            id="celery-redis-url-env",
        ),
        pytest.param(
            {"type": "sqs", "url": "https://sqs.ap-northeast-1.amazonaws.com/123456789012/exports.fifo"},
            QueueSpec(
                "q", QueueType.SQS,
                url="https://sqs.ap-northeast-1.amazonaws.com/123456789012/exports.fifo", region="ap-northeast-1",
            ),
            id="sqs-region-from-the-host",
        ),
        pytest.param(
            {"type": "sqs", "url": "https://eu-west-1.queue.amazonaws.com/123456789012/legacy"},
            QueueSpec("q", QueueType.SQS, url="https://eu-west-1.queue.amazonaws.com/123456789012/legacy",
                      region="eu-west-1"),
            id="sqs-region-from-a-legacy-host",
        ),
        pytest.param(
            {"type": "sqs", "url": "https://sqs.cn-north-1.amazonaws.com.cn/123456789012/china"},
            QueueSpec("q", QueueType.SQS, url="https://sqs.cn-north-1.amazonaws.com.cn/123456789012/china",
                      region="cn-north-1"),
            id="sqs-region-from-a-china-host",
        ),
        pytest.param(
            {"type": "sqs", "url": "https://sqs.eu-west-1.amazonaws.com/123456789012/q", "region": "us-east-1"},
            QueueSpec("q", QueueType.SQS, url="https://sqs.eu-west-1.amazonaws.com/123456789012/q", region="us-east-1"),
            id="sqs-region-given-wins-over-the-host",
        ),
        pytest.param(
            {"type": "sqs", "url": "http://127.0.0.1:5000/123456789012/local", "region": "us-east-1",
             "endpoint": "https://vpce-0123.sqs.us-east-1.vpce.amazonaws.com"},
            QueueSpec("q", QueueType.SQS, url="http://127.0.0.1:5000/123456789012/local", region="us-east-1",
                      endpoint="https://vpce-0123.sqs.us-east-1.vpce.amazonaws.com"),
            id="sqs-local-url-region-and-endpoint",
        ),
    ],
)
def test_queue_spec_accepts(options: dict[str, Any], spec: QueueSpec):
    report, problems = recorder()
    assert queue_spec("q", options, report) == spec
    assert problems == []


SIDEKIQ_TAKES = "it takes: queue, redis_url, redis_url_env, active_job, retry"


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        pytest.param(
            {"type": "sidekiq", "url": "https://x/1/q"},
            [("url", f"unknown option 'url' for a sidekiq queue (an option of sqs); {SIDEKIQ_TAKES}")],
            id="unknown-option-names-the-type-that-has-it",
        ),
        pytest.param(
            {"queue": "low"},
            [("queue", "unknown option 'queue' for a redis-stream queue (an option of sidekiq, celery); "
                       "it takes: stream")],
            id="unknown-option-names-every-type-that-has-it",
        ),
        pytest.param(
            {"type": "sidekiq", "activ_job": True},
            [("activ_job",
              f"unknown option 'activ_job' for a sidekiq queue (did you mean 'active_job'?); {SIDEKIQ_TAKES}")],
            id="unknown-option-of-no-type-suggests-a-close-one",
        ),
        pytest.param(
            {"type": "kafka"},
            [("type", "type 'kafka': must be one of 'redis-stream', 'sidekiq', 'celery', 'sqs'")],
            id="unknown-type",
        ),
        pytest.param(
            {"type": 3},
            [("type", "type 'an integer': must be one of 'redis-stream', 'sidekiq', 'celery', 'sqs'")],
            id="type-not-a-string",
        ),
        pytest.param(
            {"type": "sidekiq", "retry": -1},
            [("retry", "retry -1: must be true, false, or a number of retries (0 or more)")],
            id="negative-retry",
        ),
        pytest.param(
            {"type": "sidekiq", "active_job": "yes"},
            [("active_job", "active_job 'yes': must be true or false, not a string")],
            id="active-job-not-a-boolean",
        ),
        pytest.param(
            {"type": "celery", "redis_url": "redis://:hunter2@x:6379/0"},
            [("redis_url", "redis_url: holds a password, and the table is not the place for secrets: put the URL in "
                           "an environment variable and name that with redis_url_env")],
            id="password-in-redis-url-not-echoed",
        ),
        pytest.param(
            {"type": "celery", "redis_url": "redis://x", "redis_url_env": "X"},
            [("redis_url_env", "give redis_url or redis_url_env, not both")],
            id="redis-url-and-its-env",
        ),
        pytest.param(
            {"type": "sqs"},
            [("url", "url is required: the queue's URL, as SQS gives it")],
            id="sqs-without-url",
        ),
        pytest.param(
            {"type": "sqs", "url": "http://localhost:9324/123456789012/q"},
            [("region", "region is required: it cannot be read from this url's host")],
            id="sqs-region-unreadable-from-the-host",
        ),
        pytest.param(
            {"type": "sqs", "url": "https://sqs.eu-west-1.amazonaws.com/q"},
            [("url", "url 'https://sqs.eu-west-1.amazonaws.com/q': must be a queue URL: "
                     "https://sqs.REGION.amazonaws.com/ACCOUNT/NAME")],
            id="sqs-url-without-account",
        ),
        pytest.param(
            {"type": "redis-stream", "stream": "a b", "type_": 1},
            [("stream", "stream 'a b': must be a non-empty name without whitespace"),
             ("type_", "unknown option 'type_' for a redis-stream queue; it takes: stream")],
            id="every-problem-of-one-entry",
        ),
    ],
)
def test_queue_spec_refuses(options: dict[str, Any], expected: Problems):
    report, problems = recorder()
    assert queue_spec("q", options, report) is None
    assert problems == expected
    assert report.count == len(expected)


def test_keys_starting_looks_at_every_depth_of_keys_only():
    args = {"_aj_top": 1, "nested": {"_aj_deep": {"_aj_deeper": 2}}, "items": [{"_aj_listed": 3}], "value": "_aj_no"}
    assert keys_starting(args, "_aj_") == {"_aj_top", "_aj_deep", "_aj_deeper", "_aj_listed"}
    assert keys_starting(["_aj_no", 1, None], "_aj_") == set()
