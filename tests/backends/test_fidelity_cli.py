"""``agentsim run --fidelity``, ``agentsim fidelity``, and the figures in ``show``, ``compare``
and ``to_pandas()``, on the tiny self-written GGUF (the same file at batch 1 and batch 4: the
noise floor's pairing, and a rung against itself)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.test_cli import cli, no_traceback

pytestmark = pytest.mark.llama


@pytest.fixture(scope="module")
def db(tmp_path_factory, tiny_gguf_dir: Path) -> Path:
    d = tmp_path_factory.mktemp("fid") / "f.db"
    spec = f"llama:{tiny_gguf_dir / 'tiny-f32.gguf'},n_threads=1"
    cli("run", "chain-arith-d4", "-b", spec, "-n", "4", "--mode", "oracle", db=d)
    proc = cli("run", "chain-arith-d4", "-b", spec, "-n", "4", "--mode", "oracle", "--batch", "4", "--fidelity", db=d)
    assert "fidelity: run 2 vs run 1: 16 of 16 hops compared" in proc.stderr
    return d


def test_show_fidelity_and_compare(db: Path) -> None:
    """show --json carries the floor; fidelity against a reference; compare's flips table."""
    js = json.loads(cli("show", "2", "--json", db=db).stdout)
    floor = js["fidelity"]["floor"][0]
    assert floor["against_run_id"] == 1 and floor["fidelity"]["compared"] == 16
    assert floor["fidelity"]["layout"] == {"rung_n_seq": 4, "reference_n_seq": 1}
    res = json.loads(cli("fidelity", "2", "--reference", "1", "--json", db=db).stdout)[0]
    assert res["reference_run_id"] == 1
    assert res["fidelity"]["kld_mean"] < 1e-3 and res["flips"]["hops_paired"] == 16
    proc = cli("compare", "1", "2", "--baseline", "1", db=db)
    assert "flips and fidelity against the baseline" in proc.stdout and "-0 +0" in proc.stdout


def test_to_pandas_has_the_columns(db: Path) -> None:
    from agentsim.api import load_results

    runs = load_results(db).to_pandas().runs
    for col in ("reference_run_id", "flips_task_right_to_wrong", "flips_hop_wrong_to_right", "kld_mean",
                "kld_ci95_low", "same_top", "floor_kld_mean", "floor_hop_flips"):
        assert col in runs.columns
    row = runs[runs["run_id"] == 2].iloc[0]
    assert row["floor_run_id"] == 1 and row["floor_hop_flips"] == 0


def test_bad_input_is_a_clear_error(db: Path) -> None:
    for args in (("fidelity", "99"), ("fidelity", "1"), ("fidelity", "1", "2", "--reference", "1"),
                 ("fidelity", "2", "--reference", "2")):
        proc = cli(*args, db=db, check=False)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        no_traceback(proc)
        assert "error:" in proc.stderr
