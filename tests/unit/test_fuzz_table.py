"""The table loader fuzzed: generated schedules.toml documents (every section and field of
docs/schedules.md and docs/queues.md, plausible and not) and byte-level mutations of the sample
table give a Table the replica can plan from, or a TableError whose every Problem names the file,
says what is wrong and, where it has a line, a line the file has; never any other exception.
The inputs the fuzzers found that broke it are kept as plain tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import write_table

from scheduler.errors import TableError
from scheduler.table import load_table


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
