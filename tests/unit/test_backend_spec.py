from __future__ import annotations

import pytest

from agentsim.backends.base import available_backends, create_backend, parse_spec
from agentsim.errors import BackendError, MissingDependencyError


def test_parse_full_spec():
    s = parse_spec("llama:smollm2@Q4_K_M,n_ctx=4096,seed=3")
    assert (s.name, s.model, s.precision) == ("llama", "smollm2", "q4_k_m")
    assert s.options_dict == {"n_ctx": "4096", "seed": "3"}
    assert str(s) == "llama:smollm2@q4_k_m,n_ctx=4096,seed=3"
    assert parse_spec("oracle").model is None
    assert parse_spec("hf:/models/my dir@bf16").model == "/models/my dir"


@pytest.mark.parametrize("text", ["", "  ", "noisy,p", "noisy,=3", "x@", ":m", "noisy,p=1,p=2"])
def test_bad_specs(text):
    with pytest.raises(BackendError):
        parse_spec(text)


def test_unknown_backend_and_options():
    with pytest.raises(BackendError, match="unknown backend 'nope'"):
        create_backend("nope")
    with pytest.raises(BackendError, match="no option"):
        create_backend("noisy,q=0.1")
    with pytest.raises(BackendError, match="must be float"):
        create_backend("noisy,p=lots")
    with pytest.raises(BackendError, match="within"):
        create_backend("noisy,p=1.5")
    b = create_backend("noisy,p=0.25,latency_ms=3")
    assert b.options["p"] == 0.25 and b.options["latency_ms"] == 3.0


def test_missing_optional_dependency_names_the_extra(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llama_cpp" else real(name, *a))
    with pytest.raises(MissingDependencyError) as ei:
        create_backend("llama:smollm2@q4_0")
    assert "pip install 'agentsim[llama]'" in str(ei.value)


def test_listing_imports_nothing():
    names = available_backends()
    assert {"oracle", "noisy", "llama", "hf"} <= set(names)


def test_first_stop_is_the_one_rule_every_backend_cuts_with():
    from agentsim.backends.base import first_stop

    assert first_stop("a, b. c", [".", ","]) == 1
    assert first_stop("abc", []) is None and first_stop("abc", [""]) is None
    assert first_stop("abc", ["x", "c"]) == 2 and first_stop("", ["a"]) is None


def test_backend_info_fills_the_run_columns_of_its_own_names():
    """BackendInfo's fields go to the run's columns of the same name, none copied by hand: only
    name, device and extra are not columns (they are backend_name and backend_info)."""
    import dataclasses

    from agentsim.backends.base import BackendInfo
    from agentsim.store import RunBase

    names = {f.name for f in dataclasses.fields(BackendInfo)}
    assert names - set(RunBase.model_fields) == {"name", "device", "extra"}
    info = BackendInfo(name="x", model="m", precision="q4_0", precision_mode="native", kernel="k", model_path="/p",
                       model_sha256="ab", source_precision="f16", model_params=7, model_bytes=9, device="cuda",
                       extra={"n": 1})
    fields = info.run_fields()
    assert fields == {"backend_name": "x", "model": "m", "precision": "q4_0", "precision_mode": "native",
                      "kernel": "k", "model_path": "/p", "model_sha256": "ab", "source_precision": "f16",
                      "model_params": 7, "model_bytes": 9, "backend_info": {"device": "cuda", "n": 1}}
