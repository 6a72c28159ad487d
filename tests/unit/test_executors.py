"""The executor spec, the resources a run asks Ray for, and the errors a user meets (no Ray
cluster needed; the cluster tests are tests/e2e/test_ray.py)."""

from __future__ import annotations

import subprocess
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


def test_cli_without_ray_is_one_clear_message(tmp_path):
    code = ("import sys; sys.modules['ray'] = None; from agentsim.cli import main; "
            "sys.exit(main(sys.argv[1:]))")
    proc = subprocess.run([sys.executable, "-c", code, "run", "chain-linear", "-b", "oracle", "-n", "1",
                           "--executor", "ray", "--db", str(tmp_path / "x.db")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "agentsim[ray]" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_bad_executor_is_one_clear_message(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "agentsim.cli", "run", "chain-linear", "-b", "oracle",
                           "--executor", "dask", "--db", str(tmp_path / "x.db")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "unknown executor" in proc.stderr and "Traceback" not in proc.stderr


def test_a_node_prepares_nothing_for_a_simulation_backend():
    assert prepare_on_node(create_backend("noisy")) is None


def test_a_node_verifies_the_model_against_the_drivers_sha256(tmp_path):
    """A model the node has is resolved and checked; a different file than the driver's is an
    error naming both hashes' beginnings (tiny GGUF written by the tests' helper)."""
    from agentsim import models
    from agentsim.errors import ModelError

    pytest.importorskip("gguf")
    from tests.tiny_models import write_tiny_gguf

    path = write_tiny_gguf(tmp_path / "tiny.gguf")
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
