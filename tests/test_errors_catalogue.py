"""Run every row of docs/errors.md: the documented command must end the documented way.

The doc is the single list: each table row names a command (or an HTTP request), a piece of
the text lenet5 prints and the exit code (or HTTP status). Besides matching both, a row
fails on a traceback, a hang, an empty folder left behind or a half-written temp file.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from bad_inputs import empty_folders, make_workspace, run_cli, run_http, web_client  # noqa: E402

from lenet5.files import TEMP_NAME  # noqa: E402

DOC = Path(__file__).resolve().parents[1] / "docs" / "errors.md"
ROW = re.compile(r"^\| (?P<id>[a-z0-9-]+) \| (?P<what>.+?) \| `(?P<command>.+?)` \| `(?P<says>.+?)` \| "
                 r"(?P<exit>.+?) \|$")


def catalogue() -> list[dict[str, str]]:
    rows = [match.groupdict() for line in DOC.read_text().splitlines() if (match := ROW.match(line))]
    for row in rows:
        row["says"] = row["says"].replace("\\|", "|")
    return rows


ROWS = catalogue()


def test_the_catalogue_is_complete() -> None:
    ids = [row["id"] for row in ROWS]
    assert len(ids) >= 80 and len(set(ids)) == len(ids)
    table_lines = [line for line in DOC.read_text().splitlines() if line.startswith("| ") and "---" not in line]
    assert len(table_lines) - DOC.read_text().count("| id | What you did |") == len(ROWS), "a row did not parse"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_workspace(tmp_path_factory.mktemp("catalogue"))


@pytest.fixture(scope="module")
def client(workspace: Path):
    pytest.importorskip("fastapi")
    return web_client(workspace)


@pytest.mark.parametrize("row", ROWS, ids=[row["id"] for row in ROWS])
def test_every_documented_bad_input_ends_as_documented(row: dict[str, str], workspace: Path, request,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(workspace)
    command = row["command"]
    if not command.startswith("lenet5 "):
        status, text = run_http(request.getfixturevalue("client"), command, workspace)
        assert f"HTTP {status}" == row["exit"], text
        assert row["says"] in text
        return
    before = {p for p in workspace.rglob("*") if p.is_dir()}
    outcome = run_cli(command.removeprefix("lenet5 "))
    assert outcome.kind not in ("traceback", "hang"), outcome.stderr
    assert str(outcome.code) == row["exit"], outcome.text
    assert row["says"] in outcome.text
    if outcome.code == 2:
        assert "error:" in outcome.stderr and "Traceback" not in outcome.stderr
    assert empty_folders(workspace, before) == []
    assert [p for p in workspace.rglob("*") if TEMP_NAME.match(p.name)] == []
