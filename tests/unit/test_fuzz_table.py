"""The table loader fuzzed: generated schedules.toml documents (every section and field of
docs/schedules.md and docs/queues.md, plausible and not) and byte-level mutations of the sample
table give a Table the replica can plan from, or a TableError whose every Problem names the file,
says what is wrong and, where it has a line, a line the file has; never any other exception.
The inputs the fuzzers found that broke it are kept as plain tests."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fuzzing import DOCUMENTS, budget, mutated, toml_document
from helpers import write_table
from hypothesis import given
from hypothesis import strategies as st

from scheduler.errors import TableError
from scheduler.replica.tracks import build_tracks
from scheduler.table import Table, load_table

REPO = Path(__file__).resolve().parents[2]
SAMPLE = (REPO / "schedules.toml").read_bytes()
TENANT_FILE = (REPO / "tenants" / "big.txt").read_bytes()
PREFIX = "{scheduler}"
NOW = datetime(2026, 11, 2, tzinfo=UTC)


def test_a_tenant_file_path_holding_a_nul_is_a_problem_not_a_crash(tmp_path):
    path = write_table(tmp_path, '[tenants]\nbig = { file = "a\\u0000b" }\n')
    with pytest.raises(TableError) as refused:
        load_table(path)
    assert str(refused.value) == f"{path}:2: tenant set \"big\": file 'a\\x00b': a path cannot hold a NUL character"


@pytest.mark.parametrize("text, problem", [
    ("schedule = false\n", "schedule must be an array of tables: [[schedule]]"),
    ("[[schedule]]\nname = []\n", "schedule #1: name must be a string"),
])
def test_a_schedule_array_or_name_of_the_wrong_type_is_a_problem_not_a_crash(tmp_path, text, problem):
    path = write_table(tmp_path, text)
    with pytest.raises(TableError) as refused:
        load_table(path)
    assert problem in str(refused.value)


def test_line_numbers_count_only_tomls_own_line_breaks(tmp_path):
    """TOML ends a line at LF (or CRLF) only; a U+0085 or U+2028 inside a string is no line break."""
    path = write_table(tmp_path, '[defaults]\nargs = { note = "a\u0085b\u2028c" }\n\n[[schedule]]\nname = "x"\njob = "J"\n')
    with pytest.raises(TableError) as refused:
        load_table(path)
    assert str(refused.value) == f'{path}:4: schedule "x": cron or every is required'


@pytest.fixture
def folder(tmp_path) -> Path:
    """A copy of the repository's table folder: schedules.toml and tenants/."""
    shutil.copytree(REPO / "tenants", tmp_path / "tenants")
    return tmp_path


def loads_or_refuses(path: Path) -> Table | TableError:
    """load_table's verdict on ``path``, checked: a Table whose every track has a next tick, or a
    TableError of located problems. Any other exception fails the test as it is."""
    lines = path.read_bytes().decode("utf-8", errors="replace").count("\n") + 1
    try:
        table = load_table(path, PREFIX)
    except TableError as refused:
        assert refused.problems, "a refusal says why"
        for problem in refused.problems:
            assert problem.file == str(path), problem
            assert problem.message.strip(), problem
            assert problem.line is None or 1 <= problem.line <= lines, problem
        return refused
    for track in build_tracks(table).values():
        assert track.next_due(NOW) > NOW
    return table


@budget(300)
@given(document=DOCUMENTS)
def test_a_generated_table_is_loaded_or_refused_with_located_problems(folder, document):
    path = folder / "schedules.toml"
    path.write_text(toml_document(document))
    loads_or_refuses(path)


@budget(300)
@given(table=mutated(SAMPLE), tenants=st.one_of(st.just(TENANT_FILE), mutated(TENANT_FILE)))
def test_a_mutated_sample_table_is_loaded_or_refused_with_located_problems(folder, table, tenants):
    path = folder / "schedules.toml"
    path.write_bytes(table)
    (folder / "tenants" / "big.txt").write_bytes(tenants)
    loads_or_refuses(path)


def test_the_sample_table_and_its_serialised_twin_load(folder):
    """The fuzzers' seed and writer are sound: the sample loads, and so does a generated document
    the loader must take."""
    (folder / "schedules.toml").write_bytes(SAMPLE)
    assert isinstance(loads_or_refuses(folder / "schedules.toml"), Table)
    document = {"tenants": {"big": {"file": "tenants/big.txt"}, "odd": [{"id": "a", "timezone": "Asia/Tokyo"}]},
                "queues": {"reports": {"type": "sidekiq"}},
                "schedule": [{"name": "n", "cron": "0 3 * * *", "job": "J", "args": {"x": [1, 2.5, {"y": "z"}]},
                              "tenants": "big", "queue": "reports"}]}
    (folder / "schedules.toml").write_text(toml_document(document))
    assert isinstance(loads_or_refuses(folder / "schedules.toml"), Table)
