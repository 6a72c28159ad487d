"""The report's renderings (terminal, HTML, Markdown, JSON) and its facts, on real runs of the
``noisy`` backend in a temporary database."""

from __future__ import annotations

import io
import json
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from types import SimpleNamespace

import pytest

import agentsim
from agentsim.errors import AgentsimError, MissingDependencyError
from agentsim.render import (
    build_report,
    render_html,
    render_json,
    render_markdown,
    render_terminal,
    select_run_ids,
    write_report,
)
from agentsim.render.facts import rung_note, source_text
from agentsim.render.plots import PLOTS, render_plots, svg_for_html


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    db = tmp_path_factory.mktemp("render") / "runs.db"
    res = agentsim.simulate("chain-arith", ["noisy,p=0.05,seed=1", "noisy,p=0.25,seed=1"], params={"depth": 4},
                            instances=40, seed=2, db=str(db), mode="both")
    return res


@pytest.fixture(scope="module")
def doc(sim):
    return build_report(sim.store, [r.id for r in sim.runs], resamples=400)


@pytest.fixture(scope="module")
def plots(doc):
    return render_plots(doc)


def _verdict_lines(doc):
    return [v.line for v in doc.evaluation.verdicts if v.verdict != "baseline"]


def test_document_is_evaluate_plus_report_block(doc, sim):
    doc = doc.to_json()  # the report's JSON: evaluate()'s keys and the report's
    assert doc["schema_version"] == 2 and doc["report"]["schema_version"] == 1
    assert doc["report"]["run_ids"] == [r.id for r in sim.runs]
    facts = doc["report"]["facts"]
    assert facts["energy_kinds"] == ["estimated"]
    assert facts["n"] == [40] and facts["seeds"] == [2]
    assert facts["modes"] == ["free", "oracle"]
    assert all("simulation (no weights)" in w for w in facts["weights"])
    assert doc["report"]["rungs"] == []  # simulation backends have no weights to describe
    # error kinds are counted from the hops: free-mode runs propagate, oracle-mode runs cannot
    by_run = {b["run_id"]: b for b in doc["runs"]}
    for rid, kinds in doc["report"]["error_kinds"].items():
        mode = by_run[int(rid)]["mode"]
        assert (kinds["propagated"] > 0) == (mode == "free"), (rid, kinds)
    # the p = 0.25 free-mode run is an accuracy trap against the p = 0.05 one
    worse = next(b for b in doc["runs"] if b["backend"].startswith("noisy,p=0.25") and b["mode"] == "free")
    assert worse["verdict"]["verdict"] == "accuracy trap"


def test_json_round_trips_strictly(doc, tmp_path):
    text = render_json(doc)
    assert json.loads(text) == json.loads(json.dumps(doc.to_json(), default=str))
    files = write_report(doc, tmp_path / "r.json")
    back = json.loads(files[0].read_text())
    assert back["verdicts"] == doc.to_json()["verdicts"] and back["report"]["facts"] == doc.report["facts"]


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.svg_ids: list[str] = []
        self.ids: list[str] = []
        self.refs: list[tuple[str, str]] = []
        self.text: list[str] = []
        self.errors: list[str] = []

    VOID = {"meta", "br", "img", "link", "input", "hr", "path", "use", "rect", "circle", "stop", "line",
            "polyline", "polygon", "ellipse"}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "svg":
            self.svg_ids.append(a.get("id", ""))
        if "id" in a:
            self.ids.append(a["id"])
        for k in ("src", "href", "xlink:href"):
            if k in a:
                self.refs.append((tag, a[k]))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.append(a["id"])
        for k in ("src", "href", "xlink:href"):
            if k in a:
                self.refs.append((tag, a[k]))

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
            return
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def test_html_parses_is_self_contained_and_inlines_every_plot(doc, plots):
    html = render_html(doc, plots=plots)
    p = _Collect()
    p.feed(html)
    p.close()
    assert not p.errors, p.errors[:5]
    assert p.stack == []
    assert p.svg_ids == [f"plot-{pl['id']}" for pl in plots]
    # every plot has data on a chain scenario in both modes, but the scale axis (one model size)
    # (and the fidelity plot: simulation runs have no token distributions)
    assert [p["id"] for p in plots] == [pid for pid, _t, _f in PLOTS if pid not in ("scale-axis", "fidelity-kld")]
    assert len(p.ids) == len(set(p.ids)), "ids inside the inlined SVGs must not collide"
    # nothing is fetched: every reference points inside the page
    assert all(ref.startswith("#") for _, ref in p.refs), [r for r in p.refs if not r[1].startswith("#")][:5]
    low = html.lower()
    for needle in ("<link", "@import", "url(http", "src=\"http", "<img", "@font-face"):
        assert needle not in low, needle
    text = " ".join(p.text)
    for line in _verdict_lines(doc):
        assert line in text
    assert "estimated" in text and "CPUs" in text  # the energy kind and the machine are stated


def test_every_plot_has_a_legend_and_parses_as_svg(plots):
    for pl in plots:
        root = ET.fromstring(pl["svg"].encode())
        assert root.tag.endswith("svg")
        assert 'id="legend_' in pl["svg"], f"{pl['id']} has no legend"
        inl = svg_for_html(pl["svg"], pl["id"])
        assert inl.startswith(f'<svg id="plot-{pl["id"]}"')
        ET.fromstring(inl.encode())  # still well-formed after the ids are prefixed


def test_plots_are_deterministic(doc):
    a = render_plots(doc)
    b = render_plots(doc)
    assert [p["svg"] for p in a] == [p["svg"] for p in b]


def test_markdown_has_the_verdicts_and_writes_plot_files(doc, tmp_path, plots):
    text, files = render_markdown(doc, plot_dir=tmp_path, stem="pr", plots=plots)
    for line in _verdict_lines(doc):
        assert line in text
    assert len(files) == len(plots)
    for f in files:
        assert f.parent == tmp_path and f.name.startswith("pr-") and f.suffix == ".svg"
        assert f"]({f.name})" in text
        ET.parse(f)
    no_plots, none = render_markdown(doc)
    assert none == [] and "Plots are omitted" in no_plots
    assert "| model |" in text and "| energy kinds | estimated" in text


def test_terminal_has_the_verdicts_at_80_columns(doc):
    from rich.console import Console

    con = Console(width=80, file=io.StringIO(), record=True, color_system=None)
    for part in render_terminal(doc):
        con.print(part, soft_wrap=False)
    out = con.export_text()
    assert "accuracy trap" in out and "baseline" in out
    flat = " ".join(out.split())
    for line in _verdict_lines(doc):
        assert " ".join(line.split()) in flat
    assert max(len(x) for x in out.splitlines()) <= 80


def test_write_report_refuses_unknown_suffix_and_missing_folder(doc, tmp_path):
    with pytest.raises(AgentsimError, match="report format"):
        write_report(doc, tmp_path / "r.txt")
    with pytest.raises(AgentsimError, match="does not exist"):
        write_report(doc, tmp_path / "nope" / "r.html")


def test_select_run_ids(sim):
    store = sim.store
    ids = [r.id for r in sim.runs]
    assert select_run_ids(store, ids[:2]) == ids[:2]
    launch = sim.runs[0].launch_id
    assert select_run_ids(store, launch=launch) == ids
    assert select_run_ids(store, launch=launch[:4]) == ids
    assert select_run_ids(store, all_runs=True) == ids
    assert select_run_ids(store) == ids  # none given: every run (was: an error)
    with pytest.raises(AgentsimError, match="one of them"):
        select_run_ids(store, ids, all_runs=True)
    with pytest.raises(AgentsimError, match="no launch"):
        select_run_ids(store, launch="zzzz")
    with pytest.raises(AgentsimError):
        select_run_ids(store, [9999])


def test_missing_matplotlib_names_the_extra(doc, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(MissingDependencyError, match=r"agentsim\[report\]"):
        render_plots(doc)


# ------------------------------------------------------------------------------------------
# what each rung is relative to its source


def _block(prec, src, sha="aa", model="qwen2.5-coder-0.5b"):
    # the fields of a RunEvaluation that rung_note reads
    return SimpleNamespace(model=model, precision=prec, source_precision=src, model_sha256=sha, simulation=False)


def test_rung_notes_from_stored_facts():
    man = {"source": {"bytes": 491_400_064, "sha256": "src"},
           "rungs": {"q4_k_m": {"bytes": 491_400_064, "sha256": "aa"}, "q8_0": {"bytes": 1, "sha256": "other"}}}
    same = rung_note(_block("q4_k_m", "q4_k_m"), {"recipe": {"fallback_types": ["q5_0", "q8_0"]},
                                                    "tensor_types": {"Q5_0": 133, "Q8_0": 13, "F32": 121}}, man)
    assert same["kind"] == "same-recipe"
    assert "own q4_k_m recipe re-applied to its own dequantized weights" in same["text"]
    assert "same size as the source to the byte (491,400,064 bytes)" in same["text"]
    assert "fell back to Q5_0/Q8_0" in same["text"]
    assert "says little about q4_k_m quantization" in same["text"]
    assert "896-wide rows" in same["text"]  # the catalog's note on the default model
    assert same["facts"]["rung_bytes"] == same["facts"]["source_bytes"] == 491_400_064
    # a manifest that describes another file (sha differs) states no sizes
    other = rung_note(_block("q4_k_m", "q4_k_m", sha="zz"), {}, man)
    assert "to the byte" not in other["text"] and "rung_bytes" not in other["facts"]
    f16 = rung_note(_block("f16", "q4_k_m"), {}, None)
    assert f16["kind"] == "container" and "f16 dequantized from the shipped q4_k_m file" in f16["text"]
    assert rung_note(_block("q8_0", "q4_k_m"), {}, None)["kind"] == "re-rounded"
    q40 = rung_note(_block("q4_0", "q4_k_m"), {}, None)
    assert q40["kind"] == "double-quantized" and "q4_k_m -> q4_0, not 16-bit -> q4_0" in q40["text"]
    assert rung_note(_block("mxfp4", "q4_k_m"), {}, None)["kind"] == "double-quantized"
    assert rung_note(_block("q4_0", "f16", model="x"), {}, None)["kind"] == "from-full"
    assert rung_note(_block("f16", "f16", model="x"), {}, None)["kind"] == "as-shipped"
    assert rung_note(SimpleNamespace(precision=None, source_precision=None, model=None, simulation=True), {}, None) is None
    assert source_text("f16", "q4_k_m") == "f16 dequantized from q4_k_m"


def test_task_success_by_depth_is_lines_with_bands_one_colour_per_precision():
    """A line per run over depths (not one stacked column of dots), and the same colour for a
    precision in every plot of a report."""
    from agentsim.analysis.results import ShareOf
    from agentsim.render.plots import colour_of, task_success_by_depth

    def block(rid, prec, vals):  # the fields of a RunEvaluation the plot reads
        by_depth = {str(d): ShareOf(v, [max(0, v - 0.1), min(1, v + 0.1)], 40) for d, v in enumerate(vals, 1)}
        return SimpleNamespace(run_id=rid, mode="free", precision=prec, backend="llama", model="m", scenario="s",
                               scenario_label=None, single=SimpleNamespace(task_success_by_depth=by_depth))
    doc = SimpleNamespace(runs=[block(1, "f16", [1.0, 0.9, 0.8]), block(2, "q4_0", [0.9, 0.7, 0.5])])
    svg = task_success_by_depth(doc)
    assert svg and svg.lstrip().startswith("<?xml")
    # the colour follows the precision, not the position: q4_0 alone keeps q4_0's colour
    assert colour_of(doc)(doc.runs[1]) == colour_of(SimpleNamespace(runs=doc.runs[::-1]))(doc.runs[1])


def _summary_text(doc, width):
    from rich.console import Console

    from agentsim.render.terminal import summary_table

    buf = io.StringIO()
    Console(file=buf, width=width, highlight=False).print(summary_table(doc), soft_wrap=False)
    return buf.getvalue()


def test_summary_has_one_row_per_compared_run_and_no_baseline_row(doc):
    text = _summary_text(doc, 118)
    compared = [b for b in doc.runs if not b.is_baseline and b.verdict_name != "baseline"]
    assert compared and len(compared) < len(doc.runs)
    for b in compared:  # the run cell is whole on one line: r<id> <what> vs r<baseline id>
        assert f"r{b.run_id} {b.backend} vs r{b.baseline_run_id}" in text
    starts = {line.split()[0] for line in text.splitlines() if line.strip()}
    assert not any(f"r{b.run_id}" in starts for b in doc.runs if b not in compared)


def _fake_run(rid, prec, scenario, base, verdict="inconclusive"):
    from agentsim.analysis.results import CostSummary, VerdictSummary

    # the fields of a RunEvaluation that the summary reads
    v = "baseline" if rid == base else verdict
    return SimpleNamespace(
        run_id=rid, model="m-0.5b", precision=prec, backend=f"llama:m-0.5b@{prec}", batch_size=8,
        scenario_label=scenario, scenario=scenario, mode="free", baseline_run_id=base, is_baseline=rid == base,
        verdict_name=v, verdict=SimpleNamespace(verdict=v, summary=VerdictSummary(
            verdict=v, difference=-0.25, ci95=[-0.5, 0.0], p_adjusted=1.0,
            cost=CostSummary("seconds_per_correct_task", "estimated", 1.47, [0.92, 3.68]))))


def test_summary_names_one_model_and_one_baseline_once_and_scenarios_in_their_own_column():
    doc = SimpleNamespace(runs=[_fake_run(1, "f16", "chain-linear", 1), _fake_run(2, "q4_0", "chain-linear", 1),
                                _fake_run(3, "f16", "fanin-dag", 3), _fake_run(4, "q4_0", "fanin-dag", 3)],
                          evaluation=SimpleNamespace(multiplicity="p-values Holm-adjusted across the 2 comparisons"))
    text = _summary_text(doc, 118)
    assert "model m-0.5b · baseline f16" in text
    assert "m-0.5b@" not in text  # the model is named once, in the title
    rows = [line for line in text.splitlines() if line[:2] in ("r2", "r4")]
    assert [r.split()[:5] for r in rows] == [["r2", "q4_0", "vs", "r1", "chain-linear"],
                                              ["r4", "q4_0", "vs", "r3", "fanin-dag"]]
    # two models: each run says which, and so does its baseline when baselines differ
    doc.runs[2].model = doc.runs[3].model = "other"
    doc.runs[2].precision = "q8_0"
    text = _summary_text(doc, 160)
    assert "r4 other@q4_0 vs r3 other@q8_0" in text and "r2 m-0.5b@q4_0 vs r1 m-0.5b@f16" in text
