"""The TUI's read queries agree with the core analysis, page, and never mislabel energy."""

from __future__ import annotations

import subprocess
import sys

from agentsim.store import Store
from agentsim.tui.data import counterpart_run, energy_text, instance_page, run_rows


def test_run_rows_read_the_one_headline(fixed_db):
    """The TUI's rows are :mod:`agentsim.analysis.headline`'s figures, not a copy of them."""
    from agentsim.analysis.headline import run_figures

    store = Store(fixed_db, readonly=True)
    rows = run_rows(store)
    assert len(rows) == 8
    figs = run_figures(store, [r.run for r in rows])
    for row in rows:
        assert (row.accuracy, row.task_success, row.status) == (
            figs[row.run.id].hop_accuracy, figs[row.run.id].task_success, figs[row.run.id].status)
    assert any(r.accuracy is not None and r.accuracy < 1 for r in rows), "noisy runs must have errors"


def test_instance_page_and_failed_filter(fixed_db):
    store = Store(fixed_db, readonly=True)
    noisy_free = next(r.run for r in run_rows(store) if r.run.backend.startswith("noisy") and r.run.mode == "free")
    page = instance_page(store, noisy_free.id, offset=0, limit=5)
    assert page.total == 12 and [i.index for i in page.items] == [0, 1, 2, 3, 4]
    page2 = instance_page(store, noisy_free.id, offset=10, limit=5)
    assert [i.index for i in page2.items] == [10, 11]
    failed = instance_page(store, noisy_free.id, failed_only=True)
    assert failed.total == sum(1 for i in store.instances(noisy_free.id) if not i.success) > 0
    assert all(not i.success for i in failed.items)


def test_counterpart_is_same_batch_other_mode(fixed_db):
    store = Store(fixed_db, readonly=True)
    runs = {r.id: r for r in store.list_runs()}
    for run in runs.values():
        other = counterpart_run(store, run)
        assert other is not None
        assert other.mode != run.mode
        assert (other.scenario, other.backend, other.launch_id) == (run.scenario, run.backend, run.launch_id)
        assert counterpart_run(store, other).id == run.id  # type: ignore[union-attr]


def test_energy_text_keeps_the_kind():
    assert energy_text(1.5, "estimated", "model:x") == "1.5 J (estimated, model:x)"
    assert energy_text(2.0, "measured", "nvml") == "2 J (measured, nvml)"
    assert energy_text(None, "unavailable") == "unavailable"
    assert "measured" not in energy_text(1.0, "estimated")
    assert energy_text(None, "mixed") == "- (mixed)"


def test_cli_module_does_not_import_textual():
    code = ("import sys, argparse; import agentsim.cli as c; import agentsim.tui.cli as t; "
            "c.build_parser(); assert 'textual' not in sys.modules, 'textual imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_tui_command_user_errors(tmp_path, capsys):
    from agentsim.cli import main

    bad = tmp_path / "not-a-db.db"
    bad.write_text("garbage")
    assert main(["tui", "--db", str(bad)]) == 2
    assert "file is not a database" in capsys.readouterr().err
    assert main(["tui", "--db", str(tmp_path / "missing" / "x.db")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["tui", "--db", str(tmp_path / "x.db"), "--scenarios", str(tmp_path / "nope")]) == 2
    assert "not a folder" in capsys.readouterr().err
