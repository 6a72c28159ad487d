"""The label a stored run shows for its workload: short, readable, and different whenever the
scenario differs.

A scenario's *name* seeds its instances (``agentsim:{name}:{seed}:{index}``), so it cannot
change; but two different workloads can carry one name: a family's name encodes only some of
its parameters (``pointer-chase --param depth=4`` and ``scenarios/pointer-chase-d4.yaml``,
which also sets ``distractors: 8``, are both ``pointer-chase-d4``), and a scenario file keeps
its ``name:`` while its hops are edited. The label says what the run ran:

* a family (by name, or through a scenario file that names it): the family with the parameters
  that differ from its defaults, ``pointer-chase(depth=4 distractors=8)``, or just
  ``pointer-chase`` at the defaults; a file that renames the family's scenario puts its name
  first, ``my-chase=pointer-chase(depth=4)``;
* a scenario file with its own hops: its ``name:``;
* in a database, a label already held by a run of a *different* scenario (another fingerprint,
  :attr:`agentsim.scenario.Scenario.fingerprint`) gets that fingerprint's first six characters,
  ``chain-linear#3fa2c1``: the first run of a label keeps it, every later workload is told apart.

Labels come from the stored reference alone (:func:`base_label`), so the migration that
back-fills old runs and a new run of the same workload agree. :func:`pick_label` is the one
rule for the suffix; the store applies it when it creates a run, the migration when it fills
the column.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["base_label", "pick_label", "label_candidates", "param_value_text"]

#: a parameter value printed without quotes (anything else is quoted, so labels stay unambiguous)
_PLAIN = re.compile(r"^[A-Za-z0-9_.+\-*/,:%@]+$")


def param_value_text(value: Any) -> str:
    """One parameter value as a label shows it: ``4``, ``true``, ``manager,mentor``, ``'a b'``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        value = ",".join(param_value_text(v) for v in value)
    text = str(value)
    if _PLAIN.match(text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _family_defaults(name: str) -> dict[str, Any] | None:
    """The family's parameter defaults, or None when it is not registered here (a third-party
    family whose module is not importable now): then every parameter is shown."""
    from agentsim.errors import AgentsimError

    from .registry import get_generator

    try:
        info = get_generator(name)
    except AgentsimError:
        return None
    return dict(info.params) if info is not None else None


def base_label(ref: Mapping[str, Any] | None, scenario: str) -> str:
    """The label of a scenario from its stored reference (``Run.scenario_ref``) and name
    (``Run.scenario``), before any suffix that tells it from another scenario of that label."""
    ref = ref or {}
    if ref.get("kind") != "generator" or not ref.get("name"):
        return scenario
    family = str(ref["name"])
    params = dict(ref.get("params") or {})
    defaults = _family_defaults(family)
    order = list(defaults) + [k for k in params if k not in (defaults or {})] if defaults else list(params)
    shown = [k for k in order if k in params and (defaults is None or k not in defaults
                                                   or _differs(params[k], defaults[k]))]
    text = family + (f"({' '.join(f'{k}={param_value_text(params[k])}' for k in shown)})" if shown else "")
    override = ref.get("name_override")
    if override:
        text = f"{override}={text}"
    return text


def _differs(value: Any, default: Any) -> bool:
    return json.dumps(value, sort_keys=True, default=str) != json.dumps(default, sort_keys=True, default=str)


def label_candidates(base: str, fingerprint: str | None) -> list[str]:
    """The labels a run of ``base`` may take, in order of preference."""
    fp = fingerprint or ""
    short = fp[:6] or "0" * 6
    out = [base, f"{base}#{short}"]
    if len(fp) > 6:
        out.append(f"{base}#{fp}")
    return out


def pick_label(base: str, fingerprint: str | None, holders: Mapping[str, set[str]]) -> str:
    """The first candidate label that no earlier run of a different scenario holds.

    ``holders`` maps a label to the fingerprints of the earlier runs that hold it (only the
    candidates of ``base`` are looked up). A run of a scenario already stored gets the label its
    earlier runs have."""
    fp = fingerprint or ""
    candidates = label_candidates(base, fp)
    for label in candidates:
        if holders.get(label, set()) <= {fp}:
            return label
    return candidates[-1]
