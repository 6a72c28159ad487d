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
