"""The GPU check that needs nothing but the repository: one command, at most 8 files, ~8 minutes.

    python benchmarks/device_check.py --out DIR                     # a CUDA GPU with NVML
    python benchmarks/device_check.py --out DIR --device cpu --tiny # the CPU smoke run (the test)

It runs on a bare machine whose Python has only torch, transformers, numpy, networkx, pyyaml,
jinja2, rich, nvidia-ml-py and scipy: first it installs what agentsim lacks there from the
wheelhouse ``make device-kit`` builds (``--kit``, default ``build/device-kit``; ``pip install
--no-index --find-links``, into a temporary folder, never into the machine's Python), and builds
agentsim itself from this repository the same way. Then, in a child process on that folder:

1. **lab models, for accuracy** (``hf`` backend, the ``lab-arith`` task, free mode): bf16, then each
   precision with a native kernel reachable without downloads -- ``fp8,native=true``
   (``torch._scaled_mm``, compute capability >= 8.9) and ``int8,native=true`` (``torch._int_mm``) --
   ``int4,native=true`` (weight-only, ``torch._weight_int4pack_mm``) and emulated ``nvfp4``, at batch 1, 8 and 32, with NVML energy per hop; ``nvfp4,native=true``
   is asked for too and its refusal (no FP4 tensor cores below compute capability 10.0) recorded;
2. **cost twins** (random weights of Qwen2.5-0.5B/1.5B/7B's published shapes,
   :mod:`agentsim.lab.twins`) replaying the token counts of a recorded CPU run of the demo scenarios
   (``benchmarks/data/demo_token_counts.json``) at each precision and batch size, timed, NVML energy;
3. the trap's ratios against bf16 at each batch size: per correct task (lab models) and per token
   (twins).

It writes, under ``--out``: ``device_check.db`` (the runs), ``report.html`` and ``report.json``
(``agentsim report``), ``device_check.json`` (every figure above, with the refusals and what was
skipped for time) and ``device_check.log``. Without CUDA (or without NVML) it refuses up front, exit
2, unless ``--device cpu``. ``--tiny``: fewer instances, batches 1 and 8, twins (all three shapes) cut to 1 layer and a
1024-token vocabulary, 4 short hops: the CPU smoke test that proves the path (tests/e2e/test_device_check.py).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TOKEN_COUNTS = ROOT / "benchmarks" / "data" / "demo_token_counts.json"
#: the modules agentsim needs that the device Python lacks (import names), installed from the kit
NEEDED = ("pydantic", "sqlalchemy", "sqlmodel", "alembic", "gguf", "platformdirs", "psutil")
MAX_FILES = 8


class Refused(Exception):
    """A machine that cannot run the check: said once, exit 2."""


# ---------------------------------------------------------------------------------------------
# the outer process: the device's own Python, nothing of agentsim imported


def _say(log: Any, text: str) -> None:
    print(text, flush=True)
    if log is not sys.stdout:  # the child's stdout is the log file already
        log.write(text + "\n")
        log.flush()


def check_device(device: str) -> str:
    """'cuda: NAME (cc X.Y), NVML ok' or :class:`Refused` with the reason."""
    if device == "cpu":
        return "cpu (no GPU asked for: energy is estimated, the FP8/int8 kernels run on the CPU)"
    try:
        import torch
    except ImportError:
        raise Refused("torch is not installed in this Python") from None
    if not torch.cuda.is_available():
        raise Refused("no CUDA GPU: torch.cuda.is_available() is False (for the CPU smoke run: --device cpu --tiny)")
    try:
        import pynvml

        pynvml.nvmlInit()
        pynvml.nvmlDeviceGetCount()
    except Exception as exc:  # noqa: BLE001 - any NVML failure is the same refusal
        raise Refused(f"no NVML ({type(exc).__name__}: {exc}): GPU energy cannot be measured, so the check "
                      "does not run (install nvidia-ml-py, check the driver)") from None
    cc = torch.cuda.get_device_capability(0)
    return f"cuda: {torch.cuda.get_device_name(0)} (compute capability {cc[0]}.{cc[1]}), NVML ok"


def install_site(kit: Path, site: Path, log: Any) -> None:
    """The kit's wheels and agentsim (built from this repository) into ``site`` with pip, offline."""
    wheels = kit / "wheels"
    if not wheels.is_dir() or not any(wheels.glob("*.whl")):
        raise Refused(f"no device kit at {kit} (build it here with 'make device-kit' and carry {kit.relative_to(ROOT) if kit.is_relative_to(ROOT) else kit})")
    base = [sys.executable, "-m", "pip", "install", "--no-index", "--find-links", str(wheels), "--target", str(site),
            "--disable-pip-version-check", "--no-warn-script-location", "--quiet"]
    reqs = [p.name for p in sorted(wheels.glob("*.whl")) if not p.name.startswith(("setuptools-", "wheel-", "packaging-"))]
    t0 = time.perf_counter()
    for what, cmd in (("kit wheels", [*base, "--no-deps", *[str(wheels / r) for r in reqs]]),
                      ("agentsim (from this repository)", [*base, "--no-deps", str(ROOT)])):
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise Refused(f"pip could not install the {what}:\n" + (proc.stderr or proc.stdout).strip()[-1500:])
    _say(log, f"installed {len(reqs)} kit wheels and agentsim into {site} in {time.perf_counter() - t0:.0f} s")


def outer(args: argparse.Namespace) -> int:
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "device_check.log", "a", encoding="utf-8") as log:
        _say(log, f"device check {time.strftime('%Y-%m-%d %H:%M:%S')}: python {sys.version.split()[0]}, out {out}")
        try:
            _say(log, "device: " + check_device(args.device))
            with tempfile.TemporaryDirectory(prefix="agentsim-device-") as tmp:
                site, home = Path(tmp) / "site", Path(tmp) / "home"
                install_site(args.kit, site, log)
                env = {**os.environ, "PYTHONPATH": str(site), "AGENTSIM_HOME": str(home),
                       "AGENTSIM_LAB_MODELS": str(args.kit / "models"), "PYTHONNOUSERSITE": "1"}
                env.pop("AGENTSIM_DB", None)
                cmd = [sys.executable, str(Path(__file__).resolve()), "--inner", "--out", str(out),
                       "--device", args.device, "--budget-s", str(args.budget_s)] + (["--tiny"] if args.tiny else [])
                log.flush()
                proc = subprocess.run(cmd, env=env, cwd=tmp, stdout=log, stderr=subprocess.STDOUT)
                rc = proc.returncode
        except Refused as exc:
            _say(log, f"device check refused: {exc}")
            return 2
    tail = (out / "device_check.log").read_text(encoding="utf-8").splitlines()[-12:]
    print("\n".join(tail))
    files = sorted(p.name for p in out.iterdir())
    print(f"device check: exit {rc}; {len(files)} files in {out}: {', '.join(files)}")
    return rc


# ---------------------------------------------------------------------------------------------
# the inner process: agentsim from the installed folder


def _plan(tiny: bool, cuda: bool, cc: tuple[int, int] | None) -> dict[str, Any]:
    precisions = ["bf16"]
    if cuda and cc and cc >= (8, 9):
        precisions.append("fp8,native=true")
    else:
        precisions.append("fp8")  # emulated: no FP8 tensor cores below 8.9, or the CPU (said in the JSON)
    # int4 weight-only through torch's own int4 kernel (no package: torchao cannot travel); on the
    # CPU the lab models run it emulated and the twins run torch's CPU int4 kernel
    precisions += ["int8,native=true" if cuda else "int8", "int4,native=true" if cuda else "int4", "nvfp4"]
    return {
        "lab_models": ["lab-1m"] if tiny else ["lab-1m", "lab-4m"],
        "precisions": precisions,
        "batches": [1, 8] if tiny else [1, 8, 32],
        "instances": 8 if tiny else 32,
        "depth": 2 if tiny else 4,
        # every shape, 7B included (15.2 GB of bf16 weights: fits an 80 GB H100 with every precision's
        # copy); --tiny builds each with 1 layer and a 1024-token vocabulary: the shapes' code path
        "twins": ["qwen2.5-0.5b", "qwen2.5-1.5b", "qwen2.5-7b"],
        "twin_layers": 1 if tiny else None,
        "twin_vocab": 1024 if tiny else None,
        "twin_hops": 4 if tiny else 64,
    }


def _lab_accuracy(plan: dict[str, Any], device: str, store: Any, meter: Any, log: Any,
                  deadline: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    from agentsim import models
    from agentsim.errors import AgentsimError
    from agentsim.launch import RunControl, execute
    from agentsim.scenario.resolve import resolve_scenario

    scenario = resolve_scenario("lab-arith", {"depth": plan["depth"]})

    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    from agentsim.models.lab_source import shipped_file

    for name in plan["lab_models"]:
        if shipped_file(name) is None:  # never train here: the GPU's minutes are for measuring
            skipped.append({"what": f"lab model {name}", "why": "not carried (make device-kit copies it when built)"})
            _say(log, f"skipped {name}: not carried")
            continue
        try:
            models.fetch(name, log=lambda m: _say(log, m))
        except AgentsimError as exc:
            skipped.append({"what": f"lab model {name}", "why": exc.message})
            _say(log, f"skipped {name}: {exc.message}")
            continue
        for prec in plan["precisions"]:
            if time.time() > deadline:
                skipped.append({"what": f"hf:{name}@{prec}", "why": "time budget spent"})
                continue
            spec = f"hf:{name}@{prec},device={device}"
            t0 = time.perf_counter()
            runs, failures = execute([scenario], [spec], store=store, instances=plan["instances"], seed=0,
                                     modes=("free",),
                                             control=RunControl(meter=meter), batch_sizes=tuple(plan["batches"]))
            for _, exc in failures:
                skipped.append({"what": spec, "why": exc.message})
                _say(log, f"refused {spec}: {exc.message}")
            for r in runs:
                rows.append(_run_row(store, r, name, prec))
            _say(log, f"{spec}: {len(runs)} runs in {time.perf_counter() - t0:.0f} s")
    return rows, skipped


def _run_row(store: Any, run: Any, model: str, precision: str) -> dict[str, Any]:
    hops = [h for h in store.hops(run.id) if h.kind == "llm"]
    inst = store.instances(run.id)
    ok = sum(1 for i in inst if i.success)
    wall = (run.finished_at - run.created_at).total_seconds() if run.finished_at else None
    tokens = sum(h.completion_tokens or 0 for h in hops)
    j = run.run_energy_j
    return {"run_id": run.id, "model": model, "precision": precision, "precision_mode": run.precision_mode,
            "kernel": run.kernel, "batch": run.batch_size, "instances": len(inst), "tasks_ok": ok,
            "hops": len(hops), "hops_ok": sum(1 for h in hops if h.correct), "completion_tokens": tokens,
            "wall_s": wall, "energy_j": j, "energy_kind": run.run_energy_kind,
            "s_per_correct_task": wall / ok if wall and ok else None,
            "j_per_correct_task": j / ok if j is not None and ok else None,
            "s_per_token": wall / tokens if wall and tokens else None,
            "j_per_token": j / tokens if j is not None and tokens else None}


def _native_fp4_refusal(device: str) -> dict[str, Any]:
    from agentsim.backends.base import create_backend
    from agentsim.errors import AgentsimError

    spec = f"hf:lab-1m@nvfp4,native=true,device={device}"
    try:
        b = create_backend(spec)
    except AgentsimError as exc:
        return {"spec": spec, "refused": True, "message": exc.message, "hint": exc.hint}
    b.close()
    return {"spec": spec, "refused": False, "message": "accepted: this GPU has FP4 tensor cores"}


def _twins(plan: dict[str, Any], device: str, meter: Any, log: Any, deadline: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    import torch

    from agentsim.backends.hf_kernels import replace_linears
    from agentsim.lab.twins import SHAPES, TWIN_LABEL, hf_twin, replay

    recorded = json.loads(TOKEN_COUNTS.read_text())
    hops = [tuple(h) for h in recorded["hops"]][: plan["twin_hops"]]
    if plan["twin_layers"]:  # --tiny: short prompts too (a smoke run of the path, not a figure)
        hops = [(min(p, 32), min(c, 4)) for p, c in hops]
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for name in plan["twins"]:
        for prec in plan["precisions"]:
            if time.time() > deadline:
                skipped.append({"what": f"{TWIN_LABEL} {name}@{prec}", "why": "time budget spent"})
                continue
            kind = prec.split(",")[0]
            t0 = time.perf_counter()
            if device == "cuda":
                torch.cuda.reset_peak_memory_stats()
            model = hf_twin(SHAPES[name], dtype=torch.bfloat16, device=device, layers=plan["twin_layers"],
                            vocab=plan.get("twin_vocab"))
            how = "bf16 (torch)"
            if kind in ("fp8", "int8", "int4") and (device == "cpu" or "native=true" in prec):
                try:
                    n = replace_linears(model, kind)
                except RuntimeError as exc:  # int4: a torch without its int4 kernel
                    skipped.append({"what": f"{TWIN_LABEL} {name}@{prec}", "why": str(exc)})
                    _say(log, f"refused {TWIN_LABEL} {name}@{prec}: {exc}")
                    del model
                    continue
                how = (f"native int4 weight-only W4A16 ({n} linears, torch's int4 kernel)" if kind == "int4"
                       else f"native {kind} W8A8 ({n} linears, agentsim hf_kernels)")
            elif kind in ("fp8", "int8", "int4", "nvfp4"):
                from agentsim import quant

                with torch.no_grad():
                    for mname, mod in model.named_modules():
                        if isinstance(mod, torch.nn.Linear) and not mname.endswith("lm_head"):
                            mod.weight.data = quant.fake_quantize(mod.weight.data.float(), kind, None, dtype=torch.bfloat16)
                how = f"{kind} emulated (weights rounded, bf16 matmuls: the cost is bf16's)"
            build_s = time.perf_counter() - t0
            replay(model, hops[:2], 1, device=device, sync=sync)  # warm-up: kernels, caches
            for b in plan["batches"]:
                r = replay(model, hops, b, device=device, meter=meter, sync=sync)
                rows.append({"twin": name, "params": SHAPES[name].params, "layers": plan["twin_layers"] or SHAPES[name].layers,
                             "precision": prec, "how": how, "build_s": build_s, **r,
                             "peak_mem_bytes": torch.cuda.max_memory_allocated() if device == "cuda" else None})
            _say(log, f"{TWIN_LABEL} {name}@{prec}: {how}, {time.perf_counter() - t0:.0f} s")
            del model
            if device == "cuda":
                torch.cuda.empty_cache()
    return rows, skipped


def _ratios(rows: list[dict[str, Any]], key: tuple[str, ...], figures: tuple[str, ...]) -> list[dict[str, Any]]:
    """Each row's figures over the bf16 row of the same key and batch."""
    base = {tuple(r[k] for k in key) + (r["batch"],): r for r in rows if r["precision"] == "bf16"}
    out = []
    for r in rows:
        b = base.get(tuple(r[k] for k in key) + (r["batch"],))
        if b is None or r["precision"] == "bf16":
            continue
        out.append({**{k: r[k] for k in key}, "precision": r["precision"], "batch": r["batch"],
                    **{f"{f}_x_bf16": (r[f] / b[f]) if r.get(f) is not None and b.get(f) else None for f in figures}})
    return out


def inner(args: argparse.Namespace) -> int:
    import agentsim

    site = os.environ.get("PYTHONPATH", "")
    if site and not str(Path(agentsim.__file__).resolve()).startswith(str(Path(site).resolve())):
        print(f"device check: agentsim came from {agentsim.__file__}, not from the kit's folder {site}", flush=True)
        return 1
    import torch

    from agentsim.measure import make_meter
    from agentsim.render import build_report, render_html, render_json
    from agentsim.store import Store

    t_start = time.time()
    deadline = t_start + args.budget_s
    out: Path = args.out
    log = sys.stdout
    cuda = args.device == "cuda"
    cc = torch.cuda.get_device_capability(0) if cuda else None
    plan = _plan(args.tiny, cuda, cc)
    _say(log, "plan: " + json.dumps(plan))
    meter = make_meter("nvml" if cuda else "estimate")
    store = Store(out / "device_check.db")
    result: dict[str, Any] = {"device": args.device, "capability": list(cc) if cc else None, "plan": plan,
                              "agentsim_version": agentsim.__version__, "torch": torch.__version__,
                              "energy_meter": meter.describe(), "twin_label": "cost twin (random weights of the same shapes)"}
    result["native_fp4"] = _native_fp4_refusal(args.device)
    _say(log, f"native FP4: {result['native_fp4']['message']}")
    lab, skipped = _lab_accuracy(plan, args.device, store, meter, log, deadline)
    result["lab_runs"] = lab
    result["lab_ratios"] = _ratios(lab, ("model",), ("s_per_correct_task", "j_per_correct_task", "s_per_token", "j_per_token"))
    twins, skipped2 = _twins(plan, args.device, meter, log, deadline)
    result["twins"] = twins
    result["twin_ratios"] = _ratios(twins, ("twin",), ("s_per_token", "j_per_token", "s_per_hop"))
    result["skipped"] = skipped + skipped2
    ids = [r["run_id"] for r in lab]
    if ids:
        doc = build_report(store, ids)
        try:
            html = render_html(doc)
        except agentsim.errors.MissingDependencyError:
            html = render_html(doc, plots=[])  # matplotlib is not on the device: the report without plots
            result["report_note"] = "report.html without plots (matplotlib is not installed here)"
        (out / "report.html").write_text(html, encoding="utf-8")
        (out / "report.json").write_text(render_json(doc), encoding="utf-8")
    store.close()
    meter.close()
    result["wall_s"] = round(time.time() - t_start, 1)
    (out / "device_check.json").write_text(json.dumps(result, indent=1, default=str) + "\n", encoding="utf-8")
    files = sorted(p.name for p in out.iterdir())
    _say(log, f"wrote {len(files)} files: {', '.join(files)}; {result['wall_s']} s")
    if len(files) > MAX_FILES:
        _say(log, f"device check: {len(files)} files under {out}, more than {MAX_FILES}")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="folder for everything it writes (at most 8 files)")
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    ap.add_argument("--tiny", action="store_true", help="the CPU smoke run: a few instances, hops and layers")
    ap.add_argument("--kit", type=Path, default=ROOT / "build" / "device-kit", help="the wheelhouse (make device-kit)")
    ap.add_argument("--budget-s", type=float, default=420.0, help="stop starting new measurements after this")
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.out = args.out.resolve()
    args.kit = args.kit.resolve()
    return inner(args) if args.inner else outer(args)


if __name__ == "__main__":
    sys.exit(main())
