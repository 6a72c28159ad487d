"""Snapshot tests: every screen at 80x24 (and a larger terminal) with fixed data.

The database is built with a counting clock and a fixed energy estimate (see helpers), the app
gets a fixed wall clock and fixed backend choices, and the input cursor does not blink, so the
pictures only change when the UI does. Review the report before ``--snapshot-update``.
"""

from __future__ import annotations

import pytest

pytest.importorskip("pytest_textual_snapshot", reason="pytest-textual-snapshot is not installed")

from . import states  # noqa: E402
from .helpers import make_test_app  # noqa: E402


@pytest.fixture(autouse=True)
def _steady(monkeypatch):
    from textual.widgets import Input

    monkeypatch.setattr(Input, "_toggle_cursor", lambda _self: None)


def _app(db, **kw):
    return make_test_app(db, refresh_s=3600, **kw)


def test_scenarios_preview(snap_compare, tmp_path):
    assert snap_compare(_app(tmp_path / "runs.db", start="scenarios"), run_before=states.scenarios_preview)


def test_scenarios_invalid_file(snap_compare, tmp_path):
    assert snap_compare(_app(tmp_path / "runs.db", start="scenarios"), run_before=states.scenarios_error)


def test_launch_form(snap_compare, tmp_path):
    assert snap_compare(_app(tmp_path / "runs.db", start="launch"), run_before=states.launch_form)


def test_launch_done(snap_compare, tmp_path):
    assert snap_compare(_app(tmp_path / "runs.db", start="launch"), run_before=states.launch_done)


def test_runs(snap_compare, fixed_db):
    assert snap_compare(_app(fixed_db, start="runs"), run_before=states.runs_list)


def test_compare(snap_compare, fixed_db):
    assert snap_compare(_app(fixed_db, start="runs"), run_before=states.compare, terminal_size=(100, 30))


def test_trace(snap_compare, fixed_db):
    assert snap_compare(_app(fixed_db, start="trace"), run_before=states.trace_root_cause)


def test_trace_large(snap_compare, fixed_db):
    assert snap_compare(_app(fixed_db, start="trace"), run_before=states.trace_root_cause, terminal_size=(120, 36))


def test_help(snap_compare, fixed_db):
    assert snap_compare(_app(fixed_db, start="runs"), run_before=states.help_screen)
