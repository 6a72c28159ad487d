"""Bundled scenario families: seeded generators with an exact expected answer for every hop.

Each family registers itself with :func:`agentsim.scenario.generator` and returns a scenario as
plain data (the YAML shape) plus a ``draw`` function that draws one instance's variables from a
seeded ``random.Random``. Everything an answer depends on is drawn there, so the same seed and
parameters always give the same instance, and every ``expect`` is an exact expression over the
instance's variables and the hop's parents (re-evaluated on the inputs a hop actually received,
which is how the engine tells a hop's own errors from inherited ones).

Prompts are written for small instruct models (0.5B-class): one instruction, the facts, the
question, a strict answer format, and a grammar preset the ``llama`` backend enforces. Facts that
all hops of an instance share (tables, assignments, the order, filler) go in the ``system``
template, so a backend with a prompt cache reuses that prefix from hop to hop.

Common knobs (where they make sense):

``depth``        hops on the workflow's critical path (the family's unit of "steps")
``distractors``  irrelevant facts of the same kind (extra table rows, decoy chains, fields)
``filler``       irrelevant neutral sentences added to the shared context (context length)
``answer``       ``plain`` (a bare number / word) or ``json`` (``{"answer": ...}``)
"""

from __future__ import annotations

from .common import FILLER_SENTENCES, answer_fields

__all__ = ["FILLER_SENTENCES", "answer_fields"]
