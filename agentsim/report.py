"""Comparison tables (rich) for runs summarised by :func:`agentsim.analysis.compare_runs`."""

from __future__ import annotations

from typing import Any

__all__ = ["comparison_table"]


def _pct(v: Any) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def _rel(v: Any) -> str:
    return "" if v is None else f" ({v:.2f}x)"


def _num(v: Any, fmt: str = "{:.2f}") -> str:
    return "-" if v is None else fmt.format(v)


def comparison_table(rows: list[dict[str, Any]], title: str | None = None) -> Any:
    from rich.table import Table

    if rows:
        base = rows[0]["baseline_run_id"]
        base_row = next(r for r in rows if r["run_id"] == base)
        default_title = f"relative to run {base} ({base_row['backend']} [{base_row['mode']}])"
        if base_row.get("source_precision"):
            default_title += f"; baseline = {base_row['precision']} dequantized from {base_row['source_precision']}"
    else:
        default_title = "no runs"
    t = Table(title=title or default_title, title_justify="left")
    for col, kw in [
        ("run", {"justify": "right"}), ("scenario", {}), ("backend", {}), ("mode", {}),
        ("hop acc", {"justify": "right"}), ("task success", {"justify": "right"}),
        ("local", {"justify": "right"}), ("propag.", {"justify": "right"}),
        ("parse", {"justify": "right"}), ("tok/s", {"justify": "right"}),
        ("s/hop", {"justify": "right"}), ("energy/task", {"justify": "right"}),
    ]:
        t.add_column(col, **kw)
    for r in rows:
        rel = r.get("relative", {})
        ek = r["error_kinds"]
        energy = r["energy_per_correct_task_j"]
        e_txt = "-" if energy is None else f"{energy:.2f} J {r['energy']['kind'][:4]}."
        t.add_row(
            str(r["run_id"]), r["scenario"], r["backend"], r["mode"],
            _pct(r["accuracy"]) + _rel(rel.get("accuracy") if r["run_id"] != r["baseline_run_id"] else None),
            _pct(r["task_success"]) + _rel(rel.get("task_success") if r["run_id"] != r["baseline_run_id"] else None),
            str(ek["local"]), str(ek["propagated"]), str(ek["parse"]),
            _num(r["decode_tokens_per_s"], "{:.1f}"),
            _num(r["wall_s_per_hop"], "{:.3f}") + _rel(rel.get("wall_s_per_hop") if r["run_id"] != r["baseline_run_id"] else None),
            e_txt,
        )
    return t


def combine(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Pool several run summaries (e.g. one per scenario) into one row of figures."""
    hops = sum(s["hops_recorded"] for s in summaries)
    correct = sum(round((s["accuracy"] or 0) * s["hops_recorded"]) for s in summaries)
    finished = sum(s["instances_finished"] for s in summaries)
    success = sum(round((s["task_success"] or 0) * s["instances_finished"]) for s in summaries)
    kinds: dict[str, int] = {}
    for s in summaries:
        for k, v in s["error_kinds"].items():
            kinds[k] = kinds.get(k, 0) + v

    def total(key: str) -> float | None:
        vals = [s[key] for s in summaries if s[key] is not None]
        return float(sum(vals)) if vals else None

    ctoks = total("completion_tokens")
    dec = total("decode_s")
    wall = total("wall_s")
    energy_kinds = {s["energy"]["kind"] for s in summaries}
    joules = total("energy_j") if "energy_j" in summaries[0] else None
    if joules is None and len(energy_kinds) == 1 and energy_kinds <= {"measured", "estimated"}:
        joules = float(sum(s["energy"]["joules"] or 0 for s in summaries))
    return {
        "hops": hops,
        "accuracy": correct / hops if hops else None,
        "task_success": success / finished if finished else None,
        "instances": finished,
        "error_kinds": kinds,
        "decode_tokens_per_s": (ctoks / dec) if (ctoks and dec) else None,
        "wall_s_per_hop": (wall / hops) if (wall is not None and hops) else None,
        "energy_kind": energy_kinds.pop() if len(energy_kinds) == 1 else "mixed",
        "energy_per_correct_task_j": (joules / success) if (joules is not None and success) else None,
        "prompt_tokens": total("prompt_tokens"),
        "cached_tokens": total("cached_tokens"),
    }


def demo_table(
    store: Any, runs: list[Any], *, baseline_label: str | None = None, labels: dict[str, str] | None = None
) -> Any:
    """One row per backend x mode, pooled over scenarios, relative to the first backend."""
    from rich.table import Table

    from .analysis import summarize_run

    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    order: list[str] = []
    for r in runs:
        if r.backend not in order:
            order.append(r.backend)
        groups.setdefault((r.backend, r.mode), []).append(summarize_run(store, r))
    first = next(iter(groups.values()))[0]
    base_backend = order[0]
    label = first.get("precision") or baseline_label or base_backend
    title = f"pooled over {', '.join(sorted({s['scenario'] for g in groups.values() for s in g}))}; x = relative to {label}"
    if first.get("source_precision"):
        title += f" (baseline = {first['precision']} dequantized from {first['source_precision']})"
    t = Table(title=title, title_justify="left")
    for col in ("precision", "mode", "hop acc", "task ok", "local", "prop.", "parse", "tok/s", "s/hop", "J/task"):
        t.add_column(col, justify="left" if col in ("precision", "mode") else "right", no_wrap=True)
    base = {m: combine(groups[(base_backend, m)]) for m in ("free", "oracle") if (base_backend, m) in groups}
    for backend in order:
        for mode in ("free", "oracle"):
            if (backend, mode) not in groups:
                continue
            g = groups[(backend, mode)]
            c = combine(g)
            b = base.get(mode)
            prec = g[0].get("precision") or (labels or {}).get(backend) or backend
            if g[0].get("precision_mode") == "emulated":
                prec += "*"
            is_base = backend == base_backend
            ek = c["error_kinds"]
            e = c["energy_per_correct_task_j"]
            t.add_row(
                prec if mode == "free" else "",
                mode,
                _pct(c["accuracy"]),
                _pct(c["task_success"]),
                str(ek.get("local", 0)),
                str(ek.get("propagated", 0)),
                str(ek.get("parse", 0) + ek.get("backend", 0)),
                _num(c["decode_tokens_per_s"], "{:.1f}"),
                _num(c["wall_s_per_hop"], "{:.2f}") + ("" if is_base or not b else _x(c["wall_s_per_hop"], b["wall_s_per_hop"])),
                "-" if e is None else f"{e:.1f} {c['energy_kind'][:3]}",
            )
    t.caption = (
        "hop acc / task ok: correct hops / instances with every hop right. local: wrong on its own; "
        "prop.: wrong because a parent was wrong. parse includes backend errors. "
        "* = FP4 emulated (no FP4 tensor cores here). J/task: energy per correct task "
        "(mea. = measured, est. = estimated)."
    )
    return t


def _x(a: Any, b: Any) -> str:
    if a is None or not b:
        return ""
    return f" {a / b:.2f}x"
