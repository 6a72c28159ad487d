"""The executor spec, the resources a run asks Ray for, and the errors a user meets (no Ray
cluster needed; the cluster tests are tests/e2e/test_ray.py)."""

from __future__ import annotations

import sys

import pytest

from agentsim.backends.base import create_backend
from agentsim.distributed import ExecutorSpec, parse_executor
from agentsim.distributed.node import prepare_on_node, task_resources
from agentsim.errors import AgentsimError, MissingDependencyError


def test_parse_executor():
    assert parse_executor(None).in_process and parse_executor("in-process").in_process
    ex = parse_executor("ray,address=ray://head:10001,num_gpus=1,num_cpus=4,max_retries=5,store=direct")
    assert ex == ExecutorSpec("ray", "ray://head:10001", 4.0, 1.0, 5, "direct")
    assert parse_executor(str(ex)) == ex


@pytest.mark.parametrize("text,needle", [
    ("dask", "unknown executor"), ("ray,num_gpus=-1", "num_gpus"), ("ray,address", "key=value"),
    ("ray,store=nfs", "store="), ("ray,colour=red", "unknown option"), ("in-process,num_cpus=2", "no options"),
    ("ray,max_retries=x", "max_retries"),
])
def test_bad_executor_specs_are_clear_errors(text, needle):
    with pytest.raises(AgentsimError) as ei:
        parse_executor(text)
    assert needle in str(ei.value) + (ei.value.hint or "")


def test_resources_follow_the_backend():
    ray_ = ExecutorSpec("ray")
    assert task_resources(create_backend("noisy,p=0.1"), ray_) == {"num_cpus": 1.0, "num_gpus": 0.0}
    llama_cpu = create_backend("llama:qwen2.5-coder-0.5b@q4_0,n_threads=3")
    assert task_resources(llama_cpu, ray_, cluster_gpus=0) == {"num_cpus": 3.0, "num_gpus": 0.0}
    assert task_resources(llama_cpu, ray_, cluster_gpus=2) == {"num_cpus": 1.0, "num_gpus": 1.0}
    cpu_only = create_backend("llama:qwen2.5-coder-0.5b@q4_0,n_threads=2,n_gpu_layers=0")
    assert task_resources(cpu_only, ray_, cluster_gpus=2) == {"num_cpus": 2.0, "num_gpus": 0.0}
    forced = ExecutorSpec("ray", num_cpus=0.5, num_gpus=0.25)
    assert task_resources(cpu_only, forced) == {"num_cpus": 0.5, "num_gpus": 0.25}


def test_without_ray_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    from agentsim.distributed.ray_executor import require_ray

    with pytest.raises(MissingDependencyError) as ei:
        require_ray()
    assert ei.value.hint == "pip install 'agentsim[ray]'"


def test_cli_without_ray_is_one_clear_message(tmp_path, monkeypatch, capsys):
    from agentsim.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails, as where it is not installed
    code = main(["run", "chain-linear", "-b", "oracle", "-n", "1", "--executor", "ray", "--db", str(tmp_path / "x.db")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "agentsim[ray]" in err and "Traceback" not in err


def test_cli_bad_executor_is_one_clear_message(tmp_path, capsys):
    from agentsim.cli import main

    code = main(["run", "chain-linear", "-b", "oracle", "--executor", "dask", "--db", str(tmp_path / "x.db")])
    err = capsys.readouterr().err
    assert code == 2 and "unknown executor" in err and "Traceback" not in err


def test_a_node_prepares_nothing_for_a_simulation_backend():
    assert prepare_on_node(create_backend("noisy")) is None


def test_a_node_verifies_the_model_against_the_drivers_sha256(tmp_path, tiny_gguf):
    """A model the node has is resolved and checked; a different file than the driver's is an
    error naming both hashes' beginnings (the session's tiny GGUF)."""
    from agentsim import models
    from agentsim.errors import ModelError

    path = tiny_gguf
    backend = create_backend(f"llama:{path}")
    resolved = prepare_on_node(backend)
    assert resolved.sha256 == models.sha256_file(path)
    assert prepare_on_node(backend, resolved.sha256).path == resolved.path
    with pytest.raises(ModelError) as ei:
        prepare_on_node(backend, "0" * 64)
    assert "mix two models" in str(ei.value)
    missing = create_backend(f"llama:{tmp_path / 'gone.gguf'}")
    with pytest.raises(ModelError) as ei:
        prepare_on_node(missing)
    assert "every node" in (ei.value.hint or "")


def test_keep_s_parses_and_round_trips():
    assert parse_executor("ray").keep_s == 10.0
    ex = parse_executor("ray,keep_s=0")
    assert ex.keep_s == 0.0 and parse_executor(str(ex)) == ex
    with pytest.raises(AgentsimError):
        parse_executor("ray,keep_s=-1")


def test_pool_sizes_follow_the_nodes_slots():
    from agentsim.distributed.ray_executor import pool_sizes, shape_key

    one_cpu, gpu = {"num_cpus": 1.0, "num_gpus": 0.0}, {"num_cpus": 1.0, "num_gpus": 1.0}
    threads = {"num_cpus": 3.0, "num_gpus": 0.0}
    assert shape_key(one_cpu) == "cpu1-gpu0" and shape_key({"num_cpus": 0.5, "num_gpus": 0.25}) == "cpu0.5-gpu0.25"
    nodes = [{"CPU": 2.0}, {"CPU": 8.0, "GPU": 2.0}]
    sizes = pool_sizes({"a": (one_cpu, 16), "b": (gpu, 5), "c": (threads, 9), "d": (one_cpu, 3)}, nodes)
    assert sizes == {"a": 10, "b": 2, "c": 2, "d": 3}  # a slot per CPU, per GPU, per 3 CPUs; never more than runs
    assert pool_sizes({"g": (gpu, 4)}, [{"CPU": 2.0}]) == {"g": 0}  # no node has a GPU: infeasible
    assert pool_sizes({"z": ({"num_cpus": 0.0, "num_gpus": 0.0}, 4)}, [{"CPU": 1.0}]) == {"z": 4}


def _job(run_id: int, spec: str = "noisy") -> dict:
    return {"run_id": run_id, "spec": spec}


def test_the_hub_hands_out_runs_by_shape_and_keeps_a_worker_on_its_backend():
    from agentsim.distributed.worker import Hub

    hub = Hub()
    hub.reset(None, max_retries=2)
    hub.add("cpu1-gpu0", [_job(1, "a"), _job(2, "b"), _job(3, "a")])
    hub.add("cpu1-gpu1", [_job(4, "g")])
    assert hub.next("w1", "cpu1-gpu0", None, None, True)["run_id"] == 1
    # w1 has "a" loaded: it gets run 3 before run 2
    assert hub.next("w1", "cpu1-gpu0", {"run_id": 1, "spec": "a", "ok": True}, "a", False)["run_id"] == 3
    assert hub.next("w2", "cpu1-gpu0", None, None, True)["run_id"] == 2
    assert hub.next("w1", "cpu1-gpu0", {"run_id": 3, "spec": "a", "ok": True}, "a", False) is None
    assert hub.next("g1", "cpu1-gpu1", None, None, True)["run_id"] == 4  # its own shape's queue
    progress, outcomes = hub.poll()
    assert [o["run_id"] for o in outcomes] == [1, 3] and progress == []
    assert hub.poll() == ([], [])


def test_a_restarted_worker_gets_its_run_back_until_its_retries_are_spent():
    from agentsim.distributed.worker import Hub

    hub = Hub()
    hub.reset(None, max_retries=2)
    hub.add("s", [_job(1), _job(2)])
    assert hub.next("w", "s", None, None, True)["run_id"] == 1
    # the worker died holding run 1; Ray restarted it and re-ran serve: first call again
    assert hub.next("w", "s", None, None, True)["run_id"] == 1
    assert hub.next("w", "s", None, None, True)["run_id"] == 1
    # a third death is more than max_retries=2: run 1 is given up, the worker goes on with run 2
    assert hub.next("w", "s", None, None, True)["run_id"] == 2
    _, outcomes = hub.poll()
    assert outcomes[0]["run_id"] == 1 and outcomes[0]["lost"] and not outcomes[0]["ok"]
    assert "--resume 1" in outcomes[0]["hint"]


def test_a_worker_that_keeps_dying_between_runs_gets_nothing_more():
    from agentsim.distributed.worker import Hub

    hub = Hub()
    hub.reset(None, max_retries=1)
    hub.add("s", [_job(1), _job(2), _job(3)])
    assert hub.next("w", "s", None, None, True)["run_id"] == 1
    assert hub.next("w", "s", {"run_id": 1, "spec": "noisy", "ok": True}, "noisy", False)["run_id"] == 2
    assert hub.next("w", "s", {"run_id": 2, "spec": "noisy", "ok": True}, "noisy", False)["run_id"] == 3
    assert hub.next("w", "s", {"run_id": 3, "spec": "noisy", "ok": True}, "noisy", False) is None
    hub.add("s", [_job(4)])
    assert hub.next("w", "s", None, None, True)["run_id"] == 4  # a restart while holding nothing: one allowed
    hub.abandon("w")
    assert hub.next("w", "s", None, None, True) is None  # a second one is more than max_retries=1
    assert [j["run_id"] for j in hub.left()] == []


def test_a_stopped_hub_hands_out_nothing_and_gives_back_what_is_queued():
    from agentsim.distributed.worker import Hub

    hub = Hub()
    hub.reset(None, max_retries=3)
    hub.add("s", [_job(1), _job(2), _job(3)])
    assert hub.next("w", "s", None, None, True)["run_id"] == 1
    hub.stop()
    assert hub.is_stopped()
    assert hub.next("w", "s", {"run_id": 1, "spec": "noisy", "ok": False, "cancelled": True}, None, False) is None
    assert [j["run_id"] for j in hub.left("s")] == [2, 3] and hub.left() == []
    hub.reset(None, max_retries=3)  # the next launch starts clean
    assert not hub.is_stopped() and hub.poll() == ([], [])


def test_the_hubs_store_commits_and_reports_the_stop(tmp_path):
    from agentsim.distributed.worker import Hub
    from agentsim.store import Run

    hub = Hub()
    hub.reset(str(tmp_path / "hub.db"), max_retries=3)
    run, stopped = hub.call("create_run", (Run(scenario="s", backend="noisy"),), {})
    assert run.id == 1 and stopped is False
    # bookkeeping calls travel with the next waited-for call: committed in order, last answer back
    got, _ = hub.calls([("update_run", (1,), {"status": "failed"}), ("get_run", (1,), {})])
    assert got.status == "failed"
    hub.stop()
    assert hub.call("get_run", (1,), {})[1] is True
    with pytest.raises(AgentsimError):  # the first error stops the batch
        hub.calls([("get_run", (99,), {}), ("update_run", (1,), {"status": "complete"})])
    assert hub.call("get_run", (1,), {})[0].status == "failed"
    hub.close()


def test_the_local_store_and_the_hub_store_implement_the_run_store_protocol():
    """The engine's seam: both stores define every RunStore method, with its parameters
    (explicit methods, no __getattr__ proxy)."""
    import inspect

    from agentsim.distributed.worker import HubStore
    from agentsim.store import RunStore, Store

    wanted = {n: inspect.signature(getattr(RunStore, n)) for n in vars(RunStore)
              if not n.startswith("_") and callable(getattr(RunStore, n))}
    assert set(wanted) == {"get_run", "update_run", "hops", "instances", "ensure_instance",
                           "finish_instance", "record_hop"}
    for cls in (Store, HubStore):
        for name, sig in wanted.items():
            assert name in vars(cls), (cls.__name__, name)
            params = list(inspect.signature(getattr(cls, name)).parameters)
            assert params == list(sig.parameters), (cls.__name__, name)
    assert "__getattr__" not in vars(HubStore)


def test_the_distributed_code_never_names_a_built_in_backend():
    """Resources, model identity and node preparation are asked of the backend itself."""
    import re
    from pathlib import Path

    import agentsim.distributed as dist

    for path in Path(dist.__file__).parent.glob("*.py"):
        text = path.read_text()
        for name in ("llama", "hf", "openai", "oracle", "noisy"):
            assert not re.search(rf"""["']{name}["']""", text), (path.name, name)
        assert not re.search(r"agentsim\.backends\.(llama|hf|openai|simulated)", text), path.name


def test_a_third_party_backend_declares_its_own_resources_and_preparation():
    from agentsim.backends.base import parse_spec
    from tests.helpers import ScriptedBackend

    prepared = []

    class Big(ScriptedBackend):
        def resources(self, cluster_gpus=0.0):
            return {"num_cpus": 6.0, "num_gpus": 2.0 if cluster_gpus else 0.0}

        def model_identity(self):
            return "ab" * 32

        def prepare_node(self, expected_identity=None, log=None):
            prepared.append(expected_identity)
            return "ready"

    big = Big(parse_spec("scripted"))
    assert task_resources(big, ExecutorSpec("ray"), cluster_gpus=4) == {"num_cpus": 6.0, "num_gpus": 2.0}
    assert task_resources(big, ExecutorSpec("ray", num_gpus=1)) == {"num_cpus": 6.0, "num_gpus": 1.0}
    from agentsim.distributed.node import expected_model_sha256

    assert prepare_on_node(big, expected_model_sha256(big)) == "ready" and prepared == ["ab" * 32]


def test_hf_asks_for_a_gpu_on_cuda_or_on_auto_where_the_cluster_has_one():
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    auto = create_backend("hf:x@bf16")
    assert auto.resources(0) == {"num_cpus": 1.0, "num_gpus": 0.0} and auto.resources(2)["num_gpus"] == 1.0
    assert create_backend("hf:x@bf16,device=cpu").resources(2)["num_gpus"] == 0.0
    auto.options["device"] = "cuda"  # a CUDA device is refused at creation on a machine without one
    assert auto.resources(0)["num_gpus"] == 1.0
