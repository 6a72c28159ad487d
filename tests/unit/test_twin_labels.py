"""The cost twins are labelled wherever a model name is shown: models list (table and JSON), a run's
label in reports, and never swept by "all" (they answer nothing)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from agentsim.cli import main
from agentsim.models.catalog import CATALOG, TWIN_LABEL, twin_label_of
from agentsim.report import run_label


def test_twin_label_of_names_only_twins() -> None:
    assert TWIN_LABEL == "cost twin (random weights of the same shapes)"
    assert twin_label_of("twin-qwen2.5-1.5b") == TWIN_LABEL
    assert twin_label_of("lab-1m") is None and twin_label_of(None) is None and twin_label_of("nope") is None


def test_report_run_label_says_cost_twin() -> None:
    assert run_label(SimpleNamespace(model="twin-qwen2.5-0.5b", precision="q4_0", backend=None)) == f"twin-qwen2.5-0.5b@q4_0 [{TWIN_LABEL}]"
    assert run_label(SimpleNamespace(model="qwen2.5-coder-0.5b", precision="q4_0", backend=None)) == "qwen2.5-coder-0.5b@q4_0"


def test_models_list_shows_the_label(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list", "--json"]) == 0
    items = {it["name"]: it for it in json.loads(capsys.readouterr().out)}
    assert {n for n, it in items.items() if it["twin"]} == {n for n, m in CATALOG.items() if m.twin}
    assert all(items[n]["label"] == TWIN_LABEL and items[n]["description"].startswith(TWIN_LABEL)
               for n in items if items[n]["twin"])
    assert main(["models", "list"]) == 0
    text = capsys.readouterr().out
    assert text.count("cost twin") >= 2  # under each twin's name (the table may wrap the rest of the label)


def test_scale_curves_of_the_twin_family_carry_the_label() -> None:
    from agentsim.analysis.results import ABSENT
    from agentsim.analysis.scale import _twin_label

    assert _twin_label("cost-twin-qwen2.5") == TWIN_LABEL
    assert _twin_label("qwen2.5-coder") is ABSENT and _twin_label("agentsim-lab") is ABSENT  # no "label" key in their JSON
