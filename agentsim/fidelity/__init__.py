"""Fidelity: how far a run's next-token distributions drift from its reference run's, hop by hop.

A teacher-forced pass over a *finished* run, after the fact (the engine's generation loop is not
touched): for every hop whose rendered inputs (system prompt and prompt) equal the reference
run's hop, the reference hop's own completion is fed, token by token, to both models -- the
reference rung and the rung under test -- in one pass each (no sampling), and the two
distributions at every completion position are compared:

- ``kld_mean``: mean over the completion positions of KL(reference || rung), in nats, exact
  over the full vocabulary (``Backend.FIDELITY == "exact"``: llama, hf);
- ``same_top``: the share of positions where both distributions have the same most likely token;
- ``delta_p_mean`` / ``delta_p_rms``: p_reference(t) - p_rung(t) of the reference's own token t
  (llama.cpp's ``--kl-divergence`` reports the RMS);
- ``parted_at``: the first completion position whose top tokens differ (None: they never did),
  ``kld_max`` and ``kld_max_at``: the largest divergence and where it was.

In oracle mode every hop's inputs are the expected ones, so every hop is compared. In free mode
a hop sees its parents' actual outputs: once a parent's answer differs from the reference's the
inputs differ, and such a hop is recorded as ``diverged`` (nothing computed for it); only hops
with identical inputs are compared, which biases free-mode figures towards the hops where the
rung had not yet drifted -- oracle-mode figures are the clean ones.

In a ``--fidelity`` launch the backends also keep the distributions they sampled from
(``Backend.capture``): a hop whose reference completion both runs generated themselves is
compared from those (no pass needed), every other hop teacher-forced on both sides. The
``openai`` backend's capture is the server's top-k ``logprobs``: a top-k estimate with a tail
bucket (status ``topk``), compared up to the first token where the two answers part.

The reference distributions are recomputed, never stored: the database keeps one row of
aggregates per hop (``hop_fidelity``; about 150 bytes per hop with its index, so a 100-instance
sweep of 5 rungs x 2 modes x 8 hops adds well under 2 MB). Within one process the reference's
scores are cached in memory across the rungs held against it (bounded:
``AGENTSIM_FIDELITY_CACHE_MB``, default 512).

The layout of each pass follows the run's own batch size (``n_seq``, see
:mod:`agentsim.backends.llama_score`): the same rung at batch 1 against itself at batch 8 then
measures what batching alone changes -- the noise floor.
"""

from __future__ import annotations

from .figures import (
    FidelitySummary,
    Flips,
    FloorFigure,
    MeasuredFloor,
    RunFidelity,
    estimate_label,
    fidelity_summary,
    flat_figures,
    flips,
    floor_of,
    floor_text,
    measured_floors,
    run_figures,
)
from .metrics import HopMetrics, hop_metrics, topk_hop_metrics
from .passes import (
    METHOD,
    PassResult,
    ReferenceCache,
    check_reference,
    compute_fidelity,
    default_reference,
    fidelity_for_runs,
    floor_partner,
)

__all__ = [
    "HopMetrics",
    "FidelitySummary",
    "Flips",
    "FloorFigure",
    "RunFidelity",
    "MeasuredFloor",
    "PassResult",
    "METHOD",
    "hop_metrics",
    "topk_hop_metrics",
    "default_reference",
    "check_reference",
    "compute_fidelity",
    "fidelity_for_runs",
    "fidelity_summary",
    "flips",
    "ReferenceCache",
    "floor_partner",
    "run_figures",
    "estimate_label",
    "floor_of",
    "floor_text",
    "measured_floors",
    "flat_figures",
]
