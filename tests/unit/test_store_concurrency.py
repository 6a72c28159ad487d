"""Creating a database is safe under concurrent first use: several writer processes started at
once on a file that does not exist yet all succeed (issue 18: "table hop already exists")."""

from __future__ import annotations

import json
import subprocess
import sys
import time

# Each child waits for a common start time, then opens the store and writes one run with a few
# hops: the schema creation of every child overlaps.
CHILD = r"""
import json, sys, time
start, path, k = float(sys.argv[1]), sys.argv[2], int(sys.argv[3])
from agentsim.store import HopRecord, Run, Store
while time.time() < start:
    time.sleep(0.001)
store = Store(path)
run = store.create_run(Run(scenario=f"s{k}", backend="oracle", n_instances=1, hops_per_instance=5))
for i in range(5):
    store.record_hop(HopRecord(run_id=run.id, instance_index=0, hop_id=f"h{i}", topo_index=i, correct=True))
print(json.dumps({"run": run.id}))
"""


def _start_together(cmds, delay=2.0):
    start = time.time() + delay
    procs = [subprocess.Popen([c if c != "{start}" else f"{start:.3f}" for c in cmd],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for cmd in cmds]
    return [(p, *p.communicate(timeout=240)) for p in procs]


def test_writers_on_a_fresh_file_all_succeed(tmp_path):
    db = tmp_path / "fresh.db"
    n = 6
    results = _start_together([[sys.executable, "-c", CHILD, "{start}", str(db), str(k)] for k in range(n)])
    for proc, _out, err in results:
        assert proc.returncode == 0, err
        assert "already exists" not in err
    ids = sorted(json.loads(out)["run"] for _, out, _ in results)
    assert ids == list(range(1, n + 1))

    from agentsim.store import Store

    store = Store(db, readonly=True)
    assert len(store.list_runs()) == n
    assert store.hop_counts() == {i: 5 for i in ids}
    assert store.integrity_check() == "ok"


def test_four_agentsim_runs_on_a_new_database(tmp_path):
    """The report's case: four ``agentsim run`` processes started at once on a new file."""
    db = tmp_path / "new.db"
    cmd = [sys.executable, "-m", "agentsim.cli", "run", "chain-linear", "-b", "oracle", "-n", "4",
           "--energy", "off", "--db", str(db)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [(p, *p.communicate(timeout=240)) for p in procs]
    for proc, _out, err in outs:
        assert proc.returncode == 0, err
        assert "already exists" not in err

    from agentsim.store import Store

    store = Store(db, readonly=True)
    runs = store.list_runs()
    assert len(runs) == 4 and all(r.status == "complete" for r in runs)
    assert set(store.hop_counts().values()) == {4 * 3}
    assert store.integrity_check() == "ok"
