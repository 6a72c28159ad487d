"""Which parents of a hop are *inputs* of its answer, and which are only context.

A hop may depend on a parent whose value never enters its expected answer: with
``expect: quote`` and ``depends_on: [quote, size]`` the right answer is the quote whatever
``size`` is; ``size`` is context the prompt shows. Error attribution judges a hop against the
parents that matter only:

- an ``llm`` hop's inputs are the parents named in its ``expect`` expression;
- a ``tool`` hop's inputs are the parents named in its ``args`` expressions, and in ``expect``
  when it has one (the tool computes from its arguments, so a wrong argument is inherited);
- a literal ``expect`` (``42``, ``true``) has no inputs: every parent is context;
- when the names cannot be read (a syntax error, which validation reports anyway), every parent
  counts, as before this rule;
- a hop that declares ``inputs`` (a list of hop ids, or an expression over the instance's
  variables giving one per instance) is judged by those parents only, whatever ``expect`` names:
  the gsm8k family's step expectation names every earlier step (with exponent 0 where unused,
  one expression for all instances), and ``inputs: deps[k]`` gives each instance's parsed parents.

``depends_on`` is therefore the prompting context (what a hop may show, and the order hops run
in), and the input parents are the attribution's parents: ``parents_ok``, ``recovered``,
``propagated`` and the inherited root causes all use the input parents only, and the engine
stores them per hop (``inputs``) beside ``parents`` (the ``depends_on`` list).

A wrong context parent therefore neither makes a right hop ``recovered`` nor a wrong hop
``propagated``, and it is not among the hop's inherited root causes. The names come from the
expression itself (:func:`agentsim.expr.expression_names`, jinja2's
``meta.find_undeclared_variables``), so a parent read through an attribute or an index
(``table[key]``, ``rec.name``) counts as used.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from agentsim import expr

__all__ = ["input_parents", "context_parents", "names_used"]


def names_used(source: Any) -> set[str] | None:
    """The names an expression reads; an empty set for a literal; None when unreadable."""
    if not isinstance(source, str):
        return set()
    names = _names(source)
    return None if names is None else set(names)


@lru_cache(maxsize=4096)
def _names(source: str) -> frozenset[str] | None:
    # cached: the engine asks once per hop, and a scenario has few distinct expressions
    try:
        return frozenset(expr.expression_names(source))
    except Exception:  # noqa: BLE001 - a syntax error (or a limit) means: cannot tell
        return None


def input_parents(spec: Any, parents: Sequence[str] | None = None, ctx: dict[str, Any] | None = None) -> list[str]:
    """The parents of ``spec`` (a :class:`~agentsim.scenario.HopSpec`) whose values its expected
    answer uses, in ``depends_on`` order. ``parents`` defaults to ``spec.depends_on``; ``ctx``
    (the instance's variables) is what a per-instance ``inputs`` expression is evaluated on."""
    parents = list(spec.depends_on if parents is None else parents)
    if not parents:
        return []
    declared = _declared_inputs(spec, ctx)
    if declared is not None:
        return [p for p in parents if p in declared]
    sources: list[Any] = []
    if spec.kind == "tool":
        sources.extend(spec.args.values())
        if spec.expect is not None:
            sources.append(spec.expect)
    else:
        sources.append(spec.expect)
    used: set[str] = set()
    for src in sources:
        names = names_used(src)
        if names is None:
            return parents
        used |= names
    return [p for p in parents if p in used]


def context_parents(spec: Any, parents: Sequence[str] | None = None, ctx: dict[str, Any] | None = None) -> list[str]:
    """The parents of ``spec`` that its expected answer does not use (context only)."""
    parents = list(spec.depends_on if parents is None else parents)
    inputs = set(input_parents(spec, parents, ctx))
    return [p for p in parents if p not in inputs]


def _declared_inputs(spec: Any, ctx: dict[str, Any] | None) -> set[str] | None:
    """The hop's ``inputs`` (a list, or an expression evaluated on ``ctx``); None when it has none
    or an expression cannot be evaluated here (then the names of ``expect`` decide)."""
    inputs = getattr(spec, "inputs", None)
    if inputs is None:
        return None
    if isinstance(inputs, list):
        return set(inputs)
    if ctx is None:
        return None
    try:
        value = expr.evaluate(inputs, ctx)
    except Exception:  # noqa: BLE001 - an instance without the variable: the default rule
        return None
    if isinstance(value, str):
        return {value}
    try:
        return {str(v) for v in value}
    except TypeError:
        return None
