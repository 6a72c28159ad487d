"""A run summary's nested figures are typed results (energy, the reliability headline, accuracy by
depth), read by attribute in ``show``, the report's pooled table, ``to_pandas`` and the TUI; their
JSON is what the dicts printed (held byte for byte by ``test_show_compare_golden.py``; here the
keys that are there only sometimes)."""

from __future__ import annotations

import dataclasses
import json

import pytest

import agentsim
from agentsim.analysis import accuracy_by_depth, energy_summary, fit_reliability, summarize_run
from agentsim.analysis.results import DepthAccuracy, Reliability, ReliabilityHeadline
from agentsim.analysis.summary_results import EnergyOfKind, EnergySummary, RunEnergyCounter
from agentsim.cli import main
from agentsim.console import energy_text
from agentsim.report import Pooled, combine, demo_table


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    db = tmp_path_factory.mktemp("types") / "r.db"
    res = agentsim.simulate("fanin-dag", ["noisy,p=0.3,latency_ms=5", "oracle"], instances=6, seed=3, db=str(db),
                            mode="both", energy="estimate")
    return db, res


def test_the_summary_nests_typed_results(runs):
    _, res = runs
    for run in res.runs:
        s = summarize_run(res.store, run.id)
        assert isinstance(s.energy, EnergySummary) and s.energy.kind == s.energy_kind == "estimated"
        assert s.energy.summable and s.energy.joules > 0
        assert isinstance(s.energy.by_kind["estimated"], EnergyOfKind)
        assert s.energy.by_kind["estimated"].joules == pytest.approx(s.energy.joules)
        assert isinstance(s.energy.run_counter, RunEnergyCounter) and s.energy.run_counter.kind == "estimated"
        assert isinstance(s.reliability, ReliabilityHeadline) and isinstance(s.reliability, Reliability)
        assert all(isinstance(v, DepthAccuracy) for v in [*s.accuracy_by_depth.values(),
                                                         *s.model_hop_accuracy_by_depth.values()])
        js = s.to_json()
        json.dumps(js, allow_nan=False)  # plain JSON types throughout
        if run.mode == "oracle":
            assert s.reliability.r is None and s.reliability.reason.startswith("oracle mode")
            assert list(js["reliability"]) == ["r", "ci95", "half_life_hops", "half_life_ci95", "reason"]
        else:
            assert type(s.reliability.r) is float and 0 < s.reliability.r <= 1  # a number, not numpy's
            assert list(js["reliability"]) == ["r", "ci95", "half_life_hops", "half_life_ci95", "method"]
        # a summary's accuracy by depth has no interval (evaluate()'s single-run figures have one)
        assert {tuple(v) for v in js["accuracy_by_depth"].values()} == {("correct", "n", "accuracy")}
        assert list(js["energy"])[-2:] == ["run_counter", "hop_share_of_run"]


def test_energy_without_the_run_has_no_run_counter():
    rows = [{"energy_j": 2.0, "energy_kind": "measured", "energy_source": "nvml"},
            {"energy_j": None, "energy_kind": None, "energy_source": None}]  # a tool hop
    e = energy_summary(rows)
    assert list(e.to_json()) == ["joules", "kind", "source", "by_kind", "hops_metered", "hops_not_metered",
                                 "hops_below_resolution"]
    assert e.to_json()["by_kind"] == {"measured": {"joules": 2.0, "hops": 1, "source": "nvml",
                                                   "hops_below_resolution": 0, "resolution_j": None}}
    assert energy_summary([]).kind == "unavailable" and not energy_summary([]).summable


def test_show_reads_the_typed_figures(runs, capsys):
    db, res = runs
    for run in res.runs:
        capsys.readouterr()
        assert main(["show", str(run.id), "--db", str(db)]) == 0
        out = " ".join(capsys.readouterr().out.split())
        s = summarize_run(res.store, run.id)
        assert f"d1: {s.accuracy_by_depth['1'].accuracy:.2f}" in out
        assert (f"{s.reliability.r:.3f}" if s.reliability.r is not None else "- (oracle mode") in out
        assert f"{s.energy.joules:.3f} J est. (estimated," in out and "cpu_time*watts_per_core)" in out


def test_energy_text_says_why_there_is_no_figure():
    def e(kind, joules=None, by_kind=None):
        return EnergySummary(joules=joules, kind=kind, source="nvml" if joules else None, by_kind=by_kind or {},
                             hops_metered=1, hops_not_metered=0, hops_below_resolution=0)

    assert energy_text(e("unavailable")) == "unavailable (no meter on this machine)"
    assert energy_text(e("unavailable"), {"name": "off"}).startswith("not recorded")
    assert energy_text(e("measured", 1.25)) == "1.250 J meas. (measured, nvml)"
    mixed = {"measured": EnergyOfKind(2.0, 1, "nvml", 0, None), "estimated": EnergyOfKind(0.5, 1, "model", 0, None)}
    assert energy_text(e("mixed", by_kind=mixed)) == "mixed (not summed): meas. 2.000 J, est. 0.500 J"


def test_fit_reliability_takes_accuracy_by_depth_or_its_json():
    rows = [{"depth": d, "correct": c} for d, c in [(1, 1), (1, 1), (2, 1), (2, 0), (3, 0), (3, 1), (3, 0)]]
    typed = accuracy_by_depth(rows)
    assert typed["3"] == DepthAccuracy(correct=1, n=3, accuracy=1 / 3)
    plain = {d: v.to_json() for d, v in typed.items()}
    assert fit_reliability(typed) == fit_reliability(plain) and fit_reliability(typed)["r"] is not None


def test_combine_pools_one_kind_of_energy_only(runs):
    _, res = runs
    free = [summarize_run(res.store, r.id) for r in res.runs if r.mode == "free"]
    c = combine(free)
    assert isinstance(c, Pooled) and c.hops == sum(s.hops_recorded for s in free)
    success = sum(round(s.task_success * s.instances_finished) for s in free)
    assert c.energy_kind == "estimated"
    assert c.energy_per_correct_task_j == pytest.approx(sum(s.energy.joules for s in free) / success)
    assert c.error_kinds["local"] == sum(s.error_kinds["local"] for s in free)
    assert list(c.to_json())[:3] == ["hops", "accuracy", "model_hop_accuracy"]
    measured = dataclasses.replace(free[0], energy=dataclasses.replace(free[0].energy, kind="measured"))
    mixed = combine([measured, *free[1:]])
    assert mixed.energy_kind == "mixed" and mixed.energy_per_correct_task_j is None


def test_demo_table_and_frames_read_the_typed_figures(runs):
    from rich.console import Console

    _, res = runs
    con = Console(record=True, width=200)
    con.print(demo_table(res.store, res.runs))
    text = con.export_text()
    assert "est." in text and "oracle" in text and "J/task" in text
    frame = res.to_pandas().runs
    # flat columns only, as when the summary's blocks were dicts: no column holds a nested result
    assert not {"energy", "reliability", "accuracy_by_depth", "fidelity"} & set(frame.columns)
    for run in res.runs:
        s = summarize_run(res.store, run.id)
        row = frame[frame["run_id"] == run.id].iloc[0]
        assert row["energy_kind"] == "estimated" and row["energy_j"] == pytest.approx(s.energy.joules)
        assert row["energy_source"] == s.energy.source
        assert (row["reliability_r"] == pytest.approx(s.reliability.r) if s.reliability.r is not None
                else row["reliability_r"] is None or row["reliability_r"] != row["reliability_r"])
