"""Energy and memory on the real machine: the real pynvml, the real /sys/class/powercap, the real
engine and store. On a CPU-only machine NVML cannot start and there is no RAPL, so energy must
come out ``estimated`` (auto) or as a clear error (explicit nvml / rapl), never as ``measured``."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import pytest

from agentsim import api
from agentsim.analysis import summarize_run
from agentsim.cli import main as cli_main
from agentsim.errors import AgentsimError
from agentsim.measure import MeterUnavailable, PeakRSS, machine_info, make_meter
from agentsim.store import Store
from tests.conftest import _has_cuda

HAS_GPU = _has_cuda()
HAS_RAPL = Path("/sys/class/powercap").is_dir()
cpu_only = pytest.mark.skipif(HAS_GPU or HAS_RAPL, reason="this test checks a machine without NVML and RAPL")


@cpu_only
def test_real_nvml_absent_is_a_clear_error_not_a_measurement():
    with pytest.raises(MeterUnavailable) as info:
        make_meter("nvml")
    assert isinstance(info.value, AgentsimError)
    assert "NVML cannot start" in str(info.value)


@cpu_only
def test_real_rapl_absent_is_a_clear_error():
    with pytest.raises(MeterUnavailable, match="/sys/class/powercap does not exist"):
        make_meter("rapl")


def test_real_auto_never_claims_a_measurement_it_cannot_make():
    meter = make_meter("auto")
    try:
        tok = meter.begin()
        sum(i * i for i in range(200_000))
        r = meter.end(tok)
    finally:
        meter.close()
    if not (HAS_GPU or HAS_RAPL):
        assert meter.name == "estimate"
        assert r.kind == "estimated" and r.source == "model:cpu_time*watts_per_core" and r.joules > 0
        assert set(meter.describe()["not_used"]) == {"nvml", "rapl"}
    else:
        assert r.kind in ("measured", "estimated")


def test_machine_info_on_this_machine():
    info = machine_info()
    assert info["cpu_count"] >= 1 and info["ram_bytes"] > 0 and info["cpu_model"]
    assert info["versions"]["python"] == sys.version.split()[0]
    assert (len(info["gpus"]) > 0) == HAS_GPU


def test_peak_rss_is_per_hop():
    probe = PeakRSS()
    try:
        probe.begin()
        block = bytearray(96 * 2**20)
        block[:: 4096] = b"\1" * (len(block) // 4096)  # touch every page
        big = probe.end()
        del block
        probe.begin()
        small = probe.end()
    finally:
        probe.close()
    assert big is not None and big > 96 * 2**20
    if probe.per_hop:
        assert small < big - 64 * 2**20


def test_cli_explicit_meter_that_cannot_run_is_one_clear_line(tmp_path, capsys):
    if HAS_RAPL:
        pytest.skip("this machine has RAPL")
    code = cli_main(["run", "chain-linear", "-b", "oracle", "-n", "1", "--energy", "rapl",
                     "--db", str(tmp_path / "x.db")])
    err = capsys.readouterr().err
    assert code == 2
    assert "RAPL" in err and "Traceback" not in err


# --------------------------------------------------------------------------------------------
# end to end through the real engine and store


@pytest.fixture(scope="module")
def estimated_run(tmp_path_factory):
    db = tmp_path_factory.mktemp("energy") / "runs.db"
    results = api.simulate(["chain-linear", "fanin-dag"], "noisy,p=0.2,latency_ms=20", instances=2,
                           db=db, energy="estimate")
    return db, results


def test_every_llm_hop_is_estimated_and_labelled(estimated_run):
    db, results = estimated_run
    con = sqlite3.connect(db)
    rows = con.execute(
        "SELECT h.kind, energy_j, energy_kind, energy_source, energy_note, energy_below_resolution, "
        "peak_mem_bytes, peak_rss_bytes, wall_s FROM hop h"
    ).fetchall()
    assert rows
    for kind, joules, ekind, source, note, below, peak, rss, wall in rows:
        if kind == "llm":
            assert ekind == "estimated" and source == "model:cpu_time*watts_per_core"
            assert joules is not None and joules >= 0 and "W/core" in note and below == 0
            assert rss and rss > 10 * 2**20 and peak == rss  # noisy reports no peak of its own
            assert wall >= 0.02
        else:  # tool hops are not metered
            assert ekind == "unavailable" and joules is None
    # the estimate's model and the number it assumed are stored with the run
    meter = json.loads(con.execute("SELECT energy_meter FROM run LIMIT 1").fetchone()[0])
    assert meter["kind"] == "estimated" and meter["watts_per_core_origin"]
    assert {r.run_energy_kind for r in results.runs} == {"estimated"}


def test_show_json_energy_for_an_estimated_run(estimated_run, capsys):
    db, results = estimated_run
    for run in results.runs:
        assert cli_main(["show", str(run.id), "--json", "--db", str(db)]) == 0
        data = json.loads(capsys.readouterr().out)
        e = data["energy"]
        assert e["kind"] == "estimated"  # tool hops (fanin-dag) do not make it "mixed"
        assert e["source"] == "model:cpu_time*watts_per_core"
        assert e["joules"] == pytest.approx(e["by_kind"]["estimated"]["joules"]) and e["joules"] > 0
        counter = e["run_counter"]
        assert counter["kind"] == "estimated" and counter["joules"] >= e["joules"]
        assert 0 < e["hop_share_of_run"] <= 1
        assert data["machine"]["cpu_count"] >= 1


def test_runs_json_carries_the_machine(estimated_run, capsys):
    db, _ = estimated_run
    assert cli_main(["runs", "--json", "--db", str(db)]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert runs and all(r["machine"]["versions"]["python"] for r in runs)


def test_energy_off_is_unavailable_never_zero(tmp_path):
    results = api.simulate("chain-linear", "noisy,latency_ms=20", instances=1, db=tmp_path / "off.db", energy="off")
    s = summarize_run(results.store, results.runs[0].id)
    assert s.energy.kind == "unavailable" and s.energy.joules is None
    assert s.energy_per_correct_task_j is None
    hops = results.store.hops(results.runs[0].id)
    assert {h.energy_kind for h in hops} == {"unavailable"} and {h.energy_j for h in hops} == {None}


def test_auto_run_on_this_machine_is_estimated(tmp_path, monkeypatch, capsys):
    from agentsim.cli import main

    if HAS_GPU or HAS_RAPL:
        pytest.skip("this machine can measure")
    monkeypatch.setenv("AGENTSIM_CPU_WATTS_PER_CORE", "5")
    code = main(["run", "chain-linear", "-b", "noisy,latency_ms=20", "-n", "1", "--db", str(tmp_path / "auto.db")])
    assert code == 0, capsys.readouterr().err
    store = Store(tmp_path / "auto.db")
    run = store.list_runs()[0]
    assert run.energy_meter["requested"] == "auto" and run.energy_meter["watts_per_core"] == 5.0
    assert run.energy_meter["watts_per_core_origin"] == "env:AGENTSIM_CPU_WATTS_PER_CORE"
    assert {h.energy_kind for h in store.hops(run.id)} == {"estimated"}


def test_mixed_kinds_are_never_added(tmp_path):
    from agentsim.analysis import energy_summary

    rows = [
        {"energy_j": 2.0, "energy_kind": "measured", "energy_source": "nvml:total_energy_counter"},
        {"energy_j": 0.5, "energy_kind": "estimated", "energy_source": "model:cpu_time*watts_per_core"},
        {"energy_j": None, "energy_kind": "unavailable", "energy_source": None},  # a tool hop
    ]
    e = energy_summary(rows)
    assert e.kind == "mixed" and e.joules is None and not e.summable
    assert e.by_kind["measured"].joules == 2.0 and e.by_kind["estimated"].joules == 0.5
    assert e.hops_not_metered == 1
    failed = {"energy_j": None, "energy_kind": "unavailable", "energy_source": "nvml:total_energy_counter",
              "energy_note": "GPU 0: energy counter read failed"}
    e = energy_summary([rows[0], failed])
    assert e.kind == "mixed" and e.joules is None  # a failed reading is not left out silently


def test_store_adds_new_columns_to_an_older_database(tmp_path):
    db = tmp_path / "old.db"
    Store(db).close()
    con = sqlite3.connect(db)
    con.execute("ALTER TABLE hop DROP COLUMN energy_note")
    con.execute("ALTER TABLE run DROP COLUMN run_energy_note")
    con.execute("DROP TABLE alembic_version")  # written before migrations existed
    con.commit()
    con.close()
    store = Store(db)
    assert store.list_runs() == []
    cols = {r[1] for r in sqlite3.connect(db).execute("PRAGMA table_info(hop)")}
    assert "energy_note" in cols


# --------------------------------------------------------------------------------------------
# a real GPU


@pytest.mark.gpu
def test_real_nvml_measures_a_gpu():
    meter = make_meter("nvml")
    try:
        d = meter.describe()
        assert d["gpus"] and d["counter_period_s"] > 0
        tok = meter.begin()
        import time

        time.sleep(0.5)
        r = meter.end(tok)
    finally:
        meter.close()
    assert r.kind == "measured" and r.source.startswith("nvml:")
    assert r.joules is not None and r.joules > 0  # an idle GPU still draws tens of watts
    info = machine_info()
    assert info["gpus"] and info["gpus"][0]["compute_capability"] and info["gpu_driver"]


def test_a_resumed_run_does_not_compare_hops_with_a_partial_run_counter(tmp_path):
    from agentsim.engine import Cancelled
    from agentsim.launch import RunControl, execute, resume_run
    from agentsim.scenario import resolve_scenario

    store = Store(tmp_path / "resume.db")
    calls = {"n": 0}

    def cancel_after_4() -> bool:
        calls["n"] += 1
        return calls["n"] > 4

    meter = make_meter("estimate")
    with pytest.raises(Cancelled):
        execute([resolve_scenario("chain-linear")], ["noisy,latency_ms=1"], store=store, instances=3,
                control=RunControl(meter=meter, cancel=cancel_after_4))
    run = store.list_runs()[0]
    assert run.run_energy_hops == 4
    run = resume_run(store, run.id, meter=meter)
    assert run.status == "complete" and run.run_energy_hops == 9 - 4
    e = summarize_run(store, run.id).energy
    assert e.kind == "estimated" and e.run_counter.hops_covered == 5
    assert e.hop_share_of_run is None
