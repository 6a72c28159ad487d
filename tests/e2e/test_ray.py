"""The Ray executor on a real local Ray cluster (2 CPUs, loopback, one per session): a sweep
spread over workers stores exactly the rows the in-process executor stores, on SQLite (the
driver's actor commits) and on PostgreSQL (the workers commit); a worker SIGKILLed mid-run
loses nothing and duplicates nothing once Ray has restarted it and it has resumed its run; the
workers are long-lived (the next launch finds them, their backend loaded); a run no node can
hold is a clear failure; a cancelled launch resumes; the CLI drives it too."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from agentsim.launch import Launch, RunControl, run_launch
from agentsim.store import Store

ray = pytest.importorskip("ray", reason="ray is not installed: pip install 'agentsim[ray]'")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

#: 8 runs: depth 1..4 x free/oracle
SWEEP = dict(scenarios=["chain-arith"], params={"depth": [1, 2, 3, 4]}, modes="both", instances=6, seed=5,
             energy="off")


@pytest.fixture(scope="session")
def cluster():
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def rows(store: Store) -> list[tuple]:
    """Everything a report reads, without ids, times or the node it ran on."""
    out = []
    for run in sorted(store.list_runs(), key=lambda r: r.id):
        key = (run.id, run.scenario, tuple(sorted(run.params.items())), run.backend, run.mode, run.seed,
               run.n_instances, run.batch_size, run.status, run.backend_name, run.precision)
        hops = tuple((h.instance_index, h.hop_id, h.topo_index, repr(h.parsed), h.completion, h.correct,
                      h.error_kind, tuple(h.root_cause)) for h in store.hops(run.id))
        inst = tuple((i.index, i.success, i.final_correct, tuple(i.root_causes), i.finished)
                     for i in store.instances(run.id))
        out.append((key, hops, inst))
    return out


def launch(backend: str, executor: str | None) -> Launch:
    return Launch(backends=[backend], executor=executor, **SWEEP)  # type: ignore[arg-type]


def _db(kind, tmp_path, name):
    from tests.pg_server import new_db

    return new_db(kind, tmp_path, name)


def test_a_sweep_on_ray_stores_the_rows_in_process_stores(cluster, tmp_path, db_kind):
    backend = "noisy,p=0.3,seed=2"
    ref = Store(_db(db_kind, tmp_path, "inproc"))
    run_launch(launch(backend, None), store=ref)
    st = Store(_db(db_kind, tmp_path, "onray"))
    seen = []
    result = run_launch(launch(backend, "ray"), store=st, control=RunControl(progress=seen.append))
    assert not result.failures and len(result.runs) == 8
    assert rows(st) == rows(ref)
    # every run records the node it ran on, and ran in a worker, not in this process
    for run in st.list_runs():
        assert run.machine["hostname"] and run.host and run.status == "complete"
    # one progress view: every run reported, each to its end
    finals = {p.run_id: p for p in seen if p.status == "complete"}
    assert sorted(finals) == [r.id for r in result.runs]
    assert all(p.hops_done == p.hops_total for p in finals.values())


def _kill_a_worker_mid_run(db, stop: threading.Event) -> dict:
    """Wait until a worker has committed part of a run, then SIGKILL that worker."""
    me = os.getpid()
    deadline = time.time() + 240
    while time.time() < deadline and not stop.is_set():
        try:
            st = Store(db, readonly=True)
        except Exception:  # noqa: BLE001 - not created yet
            time.sleep(0.05)
            continue
        counts = st.hop_counts()
        for run in st.list_runs():
            n = counts.get(run.id, 0)
            if run.status == "running" and run.pid and run.pid != me and 3 <= n < run.n_instances * run.hops_per_instance - 3:
                os.kill(run.pid, signal.SIGKILL)
                st.close()
                return {"run_id": run.id, "pid": run.pid, "hops_before": n}
        st.close()
        time.sleep(0.02)
    return {}


def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(cluster, tmp_path, db_kind):
    backend = "noisy,p=0.3,seed=2,latency_ms=25"
    db = _db(db_kind, tmp_path, "kill")
    st = Store(db)
    box: dict = {}
    stop = threading.Event()
    killer = threading.Thread(target=lambda: box.update(_kill_a_worker_mid_run(db, stop)))
    killer.start()
    try:
        result = run_launch(launch(backend, "ray,max_retries=3"), store=st)
    finally:
        stop.set()
        killer.join()
    assert box, "no worker was caught mid-run"
    assert not result.failures, result.failures
    killed = st.get_run(box["run_id"])
    assert killed.status == "complete" and killed.pid is None
    for run in st.list_runs():
        hops = st.hops(run.id)
        assert len(hops) == run.n_instances * run.hops_per_instance
        assert len({(h.instance_index, h.hop_id) for h in hops}) == len(hops)
    assert st.integrity_check() == "ok"
    ref = Store(_db(db_kind, tmp_path, "ref"))
    run_launch(launch(backend, None), store=ref)
    assert rows(st) == rows(ref)


def test_workers_are_long_lived_and_keep_their_backend(cluster, tmp_path):
    """Two workers serve the 8 runs, each loading the backend once; the next launch of this
    driver finds the same worker processes (nothing imported or loaded again); release_pool
    gives their CPUs back."""
    from agentsim.distributed import ray_executor as rx

    rx.release_pool()
    backend = "noisy,p=0.3,seed=2"
    run_launch(launch(backend, "ray"), store=Store(tmp_path / "a.db"))
    workers = rx._KEPT.workers["cpu1-gpu0"]  # type: ignore[union-attr]
    first = ray.get([a.ping.remote() for _, a in workers])
    assert len(first) == 2 and sum(w["runs"] for w in first) == 8
    assert all(w["loads"] == (1 if w["runs"] else 0) for w in first)
    st = Store(tmp_path / "b.db")
    result = run_launch(launch(backend, "ray"), store=st)
    assert not result.failures
    second = ray.get([a.ping.remote() for _, a in rx._KEPT.workers["cpu1-gpu0"]])  # type: ignore[union-attr]
    assert {w["pid"] for w in second} == {w["pid"] for w in first}
    assert sum(w["runs"] for w in second) == 16 and all(w["loads"] <= 1 for w in second)
    assert all(r.machine["hostname"] and r.status == "complete" for r in st.list_runs())
    rx.release_pool()
    assert rx._KEPT is None
    # ray.kill is asynchronous: a ping sent at once may still be answered; the actor must be gone
    # (and its CPU back) within seconds
    deadline = time.monotonic() + 30
    while True:
        try:
            ray.get(workers[0][1].ping.remote(), timeout=10)
        except ray.exceptions.RayActorError:
            break
        assert time.monotonic() < deadline, "a released worker still answers after 30 s"
        time.sleep(0.5)


def test_a_run_no_node_can_hold_is_a_clear_failure(cluster, tmp_path):
    st = Store(tmp_path / "gpu.db")
    result = run_launch(launch("noisy,p=0.3", "ray,num_gpus=1"), store=st)
    assert len(result.failures) == 1
    spec, exc = result.failures[0]
    assert "no node of the cluster has that" in str(exc) and "num_gpus" in (exc.hint or "")
    assert {r.status for r in st.list_runs()} == {"failed"} and st.hop_counts() == {}


def test_a_cancelled_launch_leaves_interrupted_runs_that_resume(cluster, tmp_path):
    from agentsim.engine import Cancelled
    from agentsim.launch import resume_run

    backend = "noisy,p=0.3,seed=2,latency_ms=20"
    st = Store(tmp_path / "cancel.db")
    seen: list = []
    with pytest.raises(Cancelled):
        run_launch(launch(backend, "ray"), store=st, control=RunControl(
                progress=seen.append, cancel=lambda: sum(p.hops_done for p in seen[-2:]) >= 6))
    runs = st.list_runs()
    assert len(runs) == 8 and {r.status for r in runs} <= {"complete", "interrupted"}
    assert any(r.status == "interrupted" for r in runs)
    for run in runs:
        resume_run(st, run.id)
    ref = Store(tmp_path / "ref.db")
    run_launch(launch(backend, None), store=ref)
    assert rows(st) == rows(ref)


def test_the_cli_runs_a_sweep_on_the_cluster(cluster, tmp_path):
    from agentsim.distributed.ray_executor import release_pool

    release_pool()  # this driver's idle workers would hold the 2 CPUs the CLI's workers need
    db = tmp_path / "cli.db"
    proc = subprocess.run(
        [sys.executable, "-m", "agentsim.cli", "run", "chain-arith", "-p", "depth=1..2", "-b", "noisy,p=0.2",
         "-n", "3", "--energy", "off", "--executor", f"ray,address={cluster}", "--db", str(db)],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("run ")]
    assert len(lines) == 2 and all("complete" in ln for ln in lines)
    assert "Traceback" not in proc.stderr
