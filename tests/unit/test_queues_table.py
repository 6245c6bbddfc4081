"""The [queues] table: each type's options, the defaults, and every mistake located by file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from scheduler.errors import Problem, TableError
from scheduler.table import QueueSpec, QueueType, load_table

SCHEDULE = """
[[schedule]]
name = "s"
every = "1m"
job = "J"
"""


def write(directory: Path, text: str) -> Path:
    path = directory / "schedules.toml"
    path.write_text(text + SCHEDULE)
    return path


def problems_of(path: Path) -> list[Problem]:
    with pytest.raises(TableError) as raised:
        load_table(path)
    return raised.value.problems


def test_every_type_with_its_options(tmp_path):
    table = load_table(write(tmp_path, """
[queues.default]
type = "redis-stream"
stream = "jobs:{app}"

[queues.reports]
type = "sidekiq"
queue = "low"
active_job = true
retry = 3

[queues.remote-sidekiq]
type = "sidekiq"
redis_url_env = "SIDEKIQ_REDIS_URL"

[queues.billing]
type = "celery"
redis_url = "rediss://celery.internal:6380/2"

[queues.exports]
type = "sqs"
url = "https://sqs.ap-northeast-1.amazonaws.com/123456789012/exports.fifo"

[queues.local]
type = "sqs"
url = "http://127.0.0.1:5000/123456789012/local"
region = "us-east-1"

[queues.private]
type = "sqs"
url = "https://sqs.eu-west-1.amazonaws.com/123456789012/private"
endpoint = "https://vpce-0123.sqs.eu-west-1.vpce.amazonaws.com"
"""))
    assert table.queues["default"] == QueueSpec("default", QueueType.REDIS_STREAM, name="jobs:{app}")
    assert table.queues["reports"] == QueueSpec("reports", QueueType.SIDEKIQ, name="low", active_job=True, retry=3)
    assert table.queues["remote-sidekiq"].remote and table.queues["remote-sidekiq"].redis_url_env == "SIDEKIQ_REDIS_URL"
    assert table.queues["billing"].remote and not table.queues["reports"].remote
    assert table.queues["exports"].region == "ap-northeast-1" and table.queues["exports"].remote
    assert table.queues["local"].region == "us-east-1"
    assert table.queues["private"].endpoint == "https://vpce-0123.sqs.eu-west-1.vpce.amazonaws.com"
    assert table.queues["private"].region == "eu-west-1"


def test_an_undeclared_queue_uses_the_default_entry_else_a_stream(tmp_path):
    declared = load_table(write(tmp_path, '[queues.default]\ntype = "celery"\n'))
    assert declared.queue("anything").type is QueueType.CELERY
    assert declared.queue("anything").name is None, "the schedule's own queue name is used"
    bare = load_table(write(tmp_path, ""))
    assert bare.queue("anything") == QueueSpec("default")


@pytest.mark.parametrize("entry, line, message", [
    ('type = "kafka"', 2, "type 'kafka': must be one of 'redis-stream', 'sidekiq', 'celery', 'sqs'"),
    ('type = 3', 2, "type 'an integer': must be one of"),
    ('type = "sidekiq"\nurl = "https://x/1/q"', 3,
     "unknown option 'url' for a sidekiq queue (an option of sqs); it takes: queue, redis_url, redis_url_env, "
     "active_job, retry"),
    ('type = "sidekiq"\nactiv_job = true', 3, "unknown option 'activ_job' for a sidekiq queue (did you mean 'active_job'?)"),
    ('stream = "a b"', 2, "stream 'a b': must be a non-empty name without whitespace"),
    ('type = "sidekiq"\nactive_job = "yes"', 3, "active_job 'yes': must be true or false, not a string"),
    ('type = "sidekiq"\nretry = -1', 3, "retry -1: must be true, false, or a number of retries"),
    ('type = "celery"\nredis_url = "http://x"', 3, "redis_url: must start with redis://, rediss:// or unix://"),
    ('type = "celery"\nredis_url = "redis://:hunter2@x:6379/0"', 3, "redis_url: holds a password"),
    ('type = "celery"\nredis_url_env = "1BAD"', 3, "redis_url_env '1BAD': must be the name of an environment variable"),
    ('type = "celery"\nredis_url = "redis://x"\nredis_url_env = "X"', 4, "give redis_url or redis_url_env, not both"),
    ('type = "sqs"', 1, "url is required"),
    ('type = "sqs"\nurl = "https://sqs.eu-west-1.amazonaws.com/q"', 3, "must be a queue URL"),
    ('type = "sqs"\nurl = "http://localhost:9324/1/q"', 1, "region is required: it cannot be read from this url's host"),
    ('type = "sqs"\nurl = "https://sqs.eu-west-1.amazonaws.com/1/q"\nendpoint = "vpce"', 4, "endpoint 'vpce': must be a URL"),
])
def test_mistakes_name_the_file_line_queue_and_option(tmp_path, entry, line, message):
    path = write(tmp_path, "[queues.q]\n" + entry + "\n")
    [problem] = problems_of(path)
    assert (problem.file, problem.line, problem.where) == (str(path), line, 'queue "q"')
    assert message in problem.message


def test_a_password_in_a_redis_url_is_never_echoed(tmp_path):
    path = write(tmp_path, '[queues.q]\ntype = "sidekiq"\nredis_url = "redis://:hunter2@x:6379/0"\n')
    assert "hunter2" not in str(problems_of(path)[0])


HOLDS_A_PASSWORD = ("redis_url: holds a password, and the table is not the place for secrets: put the URL in an "
                    "environment variable and name that with redis_url_env")
MISREAD = ("redis_url: cannot be read as written: a '/', '?', '#' or '@' in its user name or password must be "
           "percent-encoded (%2F, %3F, %23, %40)")


@pytest.mark.parametrize("url, message", [
    ("redis://x:6379/0?password=hunter2", HOLDS_A_PASSWORD),
    ("redis://x:6379/0?db=1&ssl_password=hunter2", HOLDS_A_PASSWORD),
    ("redis://:hun/ter2@x:6379/0", MISREAD),
    ("redis://:hun?ter2@x:6379/0", MISREAD),
    ("redis://:hun#ter2@x:6379/0", MISREAD),
    ("redis://x:6379/0?password=hun#ter2", MISREAD),
])
def test_a_redis_url_with_a_password_in_its_query_or_misread_is_refused_without_a_piece_of_it(tmp_path, url, message):
    path = write(tmp_path, f'[queues.q]\ntype = "sidekiq"\nredis_url = "{url}"\n')
    [problem] = problems_of(path)
    assert (problem.line, problem.where, problem.message) == (3, 'queue "q"', message)
    assert "ter2" not in str(problem)


def test_a_queue_name_must_be_safe_in_keys(tmp_path):
    [problem] = problems_of(write(tmp_path, '[queues."a/b"]\ntype = "sidekiq"\n'))
    assert "must not contain '/'" in problem.message


def test_activejob_marker_keys_in_args_are_refused_for_an_active_job_queue(tmp_path):
    path = tmp_path / "schedules.toml"
    path.write_text('[queues.rails]\ntype = "sidekiq"\nactive_job = true\n\n'
                    '[[schedule]]\nname = "s"\nevery = "1m"\njob = "J"\nqueue = "rails"\n'
                    'args = { list = [{ _aj_globalid = "gid://x" }] }\n'
                    '\n[[schedule]]\nname = "fine"\nevery = "1m"\njob = "J"\nargs = { _aj_x = 1 }\n')
    [problem] = problems_of(path)
    assert (problem.line, problem.where) == (10, 'schedule "s"')
    assert "key '_aj_globalid' is reserved by ActiveJob" in problem.message


def test_a_stream_among_the_schedulers_keys_is_refused_where_the_key_prefix_is_known(tmp_path):
    path = write(tmp_path, '[queues.beats]\ntype = "redis-stream"\nstream = "{scheduler}:history:beat"\n\n'
                           '[queues.kept]\nstream = "{scheduler}:queue:reports"\n')
    assert load_table(path).queues["beats"].name == "{scheduler}:history:beat", "the table alone cannot tell"
    with pytest.raises(TableError) as raised:
        load_table(path, "{scheduler}")
    assert str(raised.value) == (
        f"{path}:3: queue \"beats\": stream '{{scheduler}}:history:beat': lies under the scheduler's key prefix "
        "'{scheduler}' (SCHEDULER_KEY_PREFIX), among its own keys; the only streams allowed there are "
        "'{scheduler}:queue:<queue name>'"
    )
    assert load_table(path, "{other}").queues["beats"].name == "{scheduler}:history:beat"
