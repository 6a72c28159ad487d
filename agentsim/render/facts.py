"""What a reader needs to judge a report, in words: the machine, the realisation, and what each
precision rung really is relative to the weights it was made from.

The rung notes are derived from stored facts: the run's precision and source precision, the
recipe and tensor types its backend recorded, and, where the model cache still holds it, the
ladder manifest (sizes and sha256 of the source and of the rung, checked against the run's own
sha256). Nothing here guesses: a fact that is not stored is not stated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentsim.analysis.results import RunEvaluation

from agentsim.precision import bits

__all__ = ["machine_text", "realisation_text", "rung_note", "source_text", "FULL_PRECISIONS"]

#: precisions that hold a model's weights without rounding them further (containers)
FULL_PRECISIONS = ("f32", "f16", "bf16")

_REALISATION = {
    "native": "native (the backend's own kernels compute in it)",
    "emulated": "emulated (values rounded to the format, computed by other kernels: answers accuracy, not speed)",
    "declared": "declared (a server says so; not verified)",
    "n/a": "n/a (simulation backend: no weights)",
}


def realisation_text(mode: str | None) -> str:
    return _REALISATION.get(mode or "n/a", str(mode))


def source_text(prec: str | None, src: str | None, simulation: bool = False) -> str:
    """``f16 dequantized from q4_k_m``: the run's precision and where its weights (``src``) came from."""
    if simulation or not prec:
        return "simulation (no weights)"
    if not src or src == prec:
        return f"{prec} (as shipped)" if src == prec and prec in FULL_PRECISIONS else (
            f"{prec}, made from a {src} source" if src else prec)
    if prec in FULL_PRECISIONS:
        return f"{prec} dequantized from {src}"
    return f"{prec} (made from the {src} source via f16)"


def machine_text(machine: dict[str, Any] | None) -> str:
    """One line: CPU, cores, memory, GPUs, platform and Python."""
    m = machine or {}
    if not m:
        return "not recorded"
    parts = []
    cpu = m.get("cpu_model") or m.get("machine")
    if cpu:
        cores = m.get("cpu_usable") or m.get("cpu_count")
        parts.append(f"{cpu}" + (f", {cores} CPUs" if cores else ""))
    if m.get("ram_bytes"):
        parts.append(f"{m['ram_bytes'] / 2**30:.1f} GiB RAM")
    gpus = [g.get("name") or "GPU" for g in (m.get("gpus") or []) if isinstance(g, dict)]
    parts.append(", ".join(gpus) if gpus else "no GPU")
    if m.get("platform"):
        parts.append(str(m["platform"]))
    py = (m.get("versions") or {}).get("python")
    if py:
        parts.append(f"Python {py}")
    return "; ".join(parts)


def _manifest(model: str | None) -> dict[str, Any] | None:
    if not model:
        return None
    try:
        from agentsim.models.cache import read_manifest

        return read_manifest(model)
    except Exception:  # noqa: BLE001 - a missing or unreadable cache only removes facts
        return None


def _catalog_notes(model: str | None) -> str | None:
    from agentsim.models.catalog import CATALOG

    cm = CATALOG.get(model or "")
    return cm.notes if cm is not None and cm.notes else None


def _types(tt: dict[str, Any] | None) -> str:
    if not tt:
        return ""
    w = {t: n for t, n in tt.items() if t != "F32"} or tt
    return ", ".join(f"{t} x{n}" for t, n in sorted(w.items(), key=lambda kv: (-int(kv[1]), kv[0])))


def rung_note(block: RunEvaluation, backend_info: dict[str, Any] | None = None,
              manifest: dict[str, Any] | None | bool = True) -> dict[str, Any] | None:
    """What the run's precision rung is relative to its source (None for simulation backends).

    Returns ``{"model", "precision", "source_precision", "kind", "text", "facts"}``; ``kind`` is
    one of ``container`` (a full-precision copy of quantized weights), ``same-recipe`` (the source's
    own format re-applied to its dequantized weights), ``re-rounded`` (a wider format over
    already-quantized weights), ``double-quantized`` (a second rounding on top of the source's),
    ``from-full`` (a real step down from full-precision weights) or ``as-shipped``.
    ``manifest``: True reads the model cache's ladder manifest, a dict is used as it is, None or
    False uses none.
    """
    prec, src, model = block.precision, block.source_precision, block.model
    if block.simulation or not prec or not src:
        return None
    info = backend_info or {}
    recipe = info.get("recipe") or {}
    man = _manifest(model) if manifest is True else (manifest or None)
    facts: dict[str, Any] = {}
    source = (man or {}).get("source") or {}
    rung = ((man or {}).get("rungs") or {}).get(prec) or {}
    # the manifest speaks for this run only when it describes the very file the run used
    if rung and block.model_sha256 and rung.get("sha256") == block.model_sha256:
        facts["rung_bytes"] = rung.get("bytes")
        facts["rung_sha256"] = rung.get("sha256")
    if source and (facts or prec == "source"):
        facts["source_bytes"] = source.get("bytes")
        facts["source_sha256"] = source.get("sha256")
    if recipe.get("fallback_types"):
        facts["fallback_types"] = list(recipe["fallback_types"])
    if info.get("tensor_types"):
        facts["tensor_types"] = info["tensor_types"]
    b_p, b_s = bits(prec), bits(src)
    if prec == "source" or (prec == src and src in FULL_PRECISIONS):
        kind, text = "as-shipped", f"{model}@{prec}: the shipped {src} file as it is"
    elif src in FULL_PRECISIONS:
        kind, text = "from-full", f"{model}@{prec}: quantized from the {src} source: a real {src} -> {prec} step"
    elif prec in FULL_PRECISIONS:
        kind = "container"
        text = (f"{model}@{prec}: {prec} dequantized from the shipped {src} file; it holds exactly the "
                f"{src} weights' information (a {src} model in a {prec} container), not an original 16-bit model")
    elif prec == src:
        kind = "same-recipe"
        text = (f"{model}@{prec}: the shipped file's own {src} recipe re-applied to its own dequantized weights")
        sb, rb = facts.get("source_bytes"), facts.get("rung_bytes")
        if sb and rb and sb == rb:
            text += f"; the same size as the source to the byte ({rb:,} bytes)"
        if facts.get("rung_sha256") and facts.get("rung_sha256") == facts.get("source_sha256"):
            text += "; the identical file (same sha256)"
        text += (f". Matching the baseline here says little about {src} quantization of a 16-bit model: "
                 "it is close to re-quantizing the same values")
    elif b_p is not None and b_s is not None and b_p > b_s:
        kind = "re-rounded"
        text = (f"{model}@{prec}: {prec} over weights that were already {src}; it carries no more than the "
                f"{src} file's information, so its loss against the baseline is {prec}'s rounding of those values")
    else:
        kind = "double-quantized"
        text = (f"{model}@{prec}: a second rounding on top of the {src} source (dequantized to f16, then "
                f"quantized to {prec}): it measures {src} -> {prec}, not 16-bit -> {prec}")
    if facts.get("fallback_types"):
        fb = "/".join(t.upper() for t in facts["fallback_types"])
        text += f"; llama.cpp's quantizer fell back to {fb} on tensors the {prec} blocks do not fit"
    if facts.get("tensor_types") and kind != "container":
        text += f" (tensors: {_types(facts['tensor_types'])})"
    notes = _catalog_notes(model)
    if notes and kind in ("same-recipe", "container"):
        text += f". Catalog note on the source: {notes}"
    return {"model": model, "precision": prec, "source_precision": src, "kind": kind, "text": text + ".",
            "facts": facts}
