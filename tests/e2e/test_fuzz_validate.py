"""The real `scheduler validate --config` on a few generated and mutated tables: it exits 0 or 1
and never shows a traceback, whatever the file holds (the loader itself is fuzzed in
tests/unit/test_fuzz_table.py; this runs what an operator runs)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fuzzing import DOCUMENTS, budget, mutated, toml_document
from hypothesis import given
from hypothesis import strategies as st
from test_cli import REPO, scheduler

SAMPLE = (REPO / "schedules.toml").read_bytes()


@pytest.fixture
def folder(tmp_path) -> Path:
    shutil.copytree(REPO / "tenants", tmp_path / "tenants")
    return tmp_path


@budget(4)
@given(table=st.one_of(DOCUMENTS.map(lambda document: toml_document(document).encode()), mutated(SAMPLE)))
def test_validate_exits_0_or_1_without_a_traceback_on_any_table(folder, table):
    path = folder / "schedules.toml"
    path.write_bytes(table)
    result = scheduler("validate", "--config", str(path))
    assert result.returncode in (0, 1), result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() if result.returncode else result.stdout.startswith(f"{path}: ok")
