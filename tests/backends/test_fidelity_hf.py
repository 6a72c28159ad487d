"""Fidelity on the hf backend (tiny self-written GGUF through transformers): a rung against
itself is 0, and one hop's KLD equals an independent forward pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agentsim import fidelity
from agentsim.fidelity_tables import fidelity_rows
from agentsim.launch import execute
from agentsim.store import Store

pytestmark = pytest.mark.hf


def test_hf_rung_against_itself_and_against_an_emulated_rung(tiny_gguf: Path, home: Path, tmp_path: Path) -> None:
    store = Store(tmp_path / "h.db")
    specs = [f"hf:{tiny_gguf}@f32", f"hf:{tiny_gguf}@int4"]
    (ref, low), failures = execute(["chain-arith-d4"], specs, store=store, instances=2, modes="oracle")
    (again,), f2 = execute(["chain-arith-d4"], specs[:1], store=store, instances=2, modes="oracle")
    assert not failures and not f2
    res = fidelity.compute_fidelity(store, again.id, ref.id)
    assert res.compared > 0 and res.kind == "exact"
    assert all(r.kld_mean == 0.0 and r.same_top == 1.0 for r in fidelity_rows(store, again.id, ref.id))
    fidelity.compute_fidelity(store, low.id, ref.id)
    rows = [r for r in fidelity_rows(store, low.id, ref.id) if r.status == "exact"]
    assert rows and any(r.kld_mean > 0 for r in rows)
    # one hop, independently: transformers' own forward passes, KL from scipy
    import torch
    from scipy.special import log_softmax, rel_entr

    from agentsim.backends.base import GenerationRequest, create_backend

    row = max(rows, key=lambda r: r.positions or 0)
    hop = next(h for h in store.hops(ref.id, row.instance_index) if h.hop_id == row.hop_id)
    system = next(i.system_prompt for i in store.instances(ref.id) if i.index == row.instance_index)

    def logprobs(spec: str) -> np.ndarray:
        b = create_backend(spec)
        b.load()
        ids, _ = b._prompt_ids(GenerationRequest(prompt=hop.prompt, system=system))
        comp = b.tokenizer(hop.completion, add_special_tokens=False)["input_ids"]
        with torch.inference_mode():
            lg = b.model(input_ids=torch.tensor([ids + comp[:-1]])).logits[0, len(ids) - 1:].float().numpy()
        b.close()
        return log_softmax(lg.astype(np.float64), axis=1)

    lp, lq = logprobs(specs[0]), logprobs(specs[1])
    kld = rel_entr(np.exp(lp), np.exp(lq)).sum(axis=1)
    assert len(kld) == row.positions
    assert row.kld_mean == pytest.approx(float(kld.mean()), rel=1e-4, abs=1e-9)
    store.close()
