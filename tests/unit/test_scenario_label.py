"""Scenario labels: two different workloads never share one, one workload keeps one, and the
name that seeds the instances is left alone (agentsim.scenario.label, Store.create_run)."""

from __future__ import annotations

from agentsim.scenario import resolve_scenario
from agentsim.scenario.label import base_label, label_candidates, param_value_text, pick_label
from agentsim.store import Run, Store, scenario_label_of


def _run(store: Store, ref: str, params: dict | None = None, **extra) -> object:
    sc = resolve_scenario(ref, params)
    return store.create_run(Run(scenario=sc.name, scenario_ref=sc.ref, scenario_fingerprint=sc.fingerprint,
                                params=dict(sc.ref.get("params", {})), backend="oracle", backend_name="oracle",
                                n_instances=1, hops_per_instance=len(sc.order), **extra))


def test_a_family_shows_its_non_default_params_and_a_file_its_own():
    file_ref = resolve_scenario("pointer-chase-d4")  # scenarios/pointer-chase-d4.yaml: depth 4, distractors 8
    family = resolve_scenario("pointer-chase", {"depth": 4})
    assert file_ref.name == family.name == "pointer-chase-d4"  # one name: it seeds the instances
    assert file_ref.fingerprint != family.fingerprint
    assert base_label(file_ref.ref, file_ref.name) == "pointer-chase(depth=4 distractors=8)"
    assert base_label(family.ref, family.name) == "pointer-chase(depth=4)"
    default = resolve_scenario("pointer-chase", {"depth": 3})  # 3 is the default
    assert base_label(default.ref, default.name) == "pointer-chase"
    spec = resolve_scenario("chain-linear")
    assert base_label(spec.ref, spec.name) == "chain-linear"
    wf = resolve_scenario("agent-workflow", {"verify": False})
    assert base_label(wf.ref, wf.name) == "agent-workflow(verify=false)"


def test_a_renamed_family_scenario_and_odd_values(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text("generator: pointer-chase\nname: my-chase\nparams: {depth: 2}\n")
    sc = resolve_scenario(f)
    assert sc.name == "my-chase"
    assert base_label(sc.ref, sc.name) == "my-chase=pointer-chase(depth=2)"
    assert param_value_text("manager,mentor") == "manager,mentor"
    assert param_value_text("a b") == "'a b'" and param_value_text("") == "''"
    assert param_value_text("x[1]") == "'x[1]'"  # never bare square brackets
    # a family not registered here: every parameter is shown (none can hide a difference)
    assert base_label({"kind": "generator", "name": "gone", "params": {"b": 1, "a": 2}}, "gone-x") == "gone(b=1 a=2)"
    assert base_label({}, "old") == "old"


def test_pick_label_tells_apart_only_other_scenarios():
    assert label_candidates("s", "abcdef0123456789") == ["s", "s#abcdef", "s#abcdef0123456789"]
    assert pick_label("s", "fp1", {}) == "s"
    assert pick_label("s", "fp1", {"s": {"fp1"}}) == "s"
    assert pick_label("s", "fp2aaaa", {"s": {"fp1"}}) == "s#fp2aaa"
    assert pick_label("s", "fp2aaaa", {"s": {"fp1"}, "s#fp2aaa": {"fp2aaaa"}}) == "s#fp2aaa"
    # the six characters collide with another scenario's: the whole fingerprint
    assert pick_label("s", "fp2aaaa", {"s": {"fp1"}, "s#fp2aaa": {"fp2aaab"}}) == "s#fp2aaaa"


def test_the_store_labels_runs_of_one_name_apart(tmp_path):
    store = Store(tmp_path / "l.db")
    a = _run(store, "pointer-chase-d4")
    b = _run(store, "pointer-chase", {"depth": 4})
    c = _run(store, "pointer-chase-d4")
    assert a.scenario == b.scenario == "pointer-chase-d4"
    assert a.scenario_label == c.scenario_label == "pointer-chase(depth=4 distractors=8)"
    assert b.scenario_label == "pointer-chase(depth=4)"
    assert store.get_run(b.id).scenario_label == b.scenario_label  # stored, not computed on read


def test_an_edited_file_of_one_name_gets_a_suffix(tmp_path):
    store = Store(tmp_path / "e.db")
    f = tmp_path / "shop.yaml"
    f.write_text("name: shop\nhops:\n  - id: a\n    prompt: 'Say 1'\n    expect: '1'\n")
    first = _run(store, f)
    f.write_text("name: shop\nhops:\n  - id: a\n    prompt: 'Say 2'\n    expect: '2'\n")
    second = _run(store, f)
    edited = resolve_scenario(f)
    assert first.scenario_label == "shop"
    assert second.scenario_label == f"shop#{edited.fingerprint[:6]}"
    again = _run(store, f)
    assert again.scenario_label == second.scenario_label


def test_two_writers_that_took_one_label_at_once_settle_on_two(tmp_path):
    """A run inserted with a label an earlier run of another scenario holds (what a race between
    two processes leaves) yields: the later run takes the suffix."""
    store = Store(tmp_path / "r.db")
    from sqlmodel import Session

    with Session(store.engine) as s:
        s.add(Run(scenario="x", scenario_fingerprint="aaaaaaaa11", scenario_label="x", backend="oracle"))
        s.commit()
    with Session(store.engine) as s:
        late = Store._free_label(s, "x", "bbbbbbbb22", before=None)
    assert late == "x#bbbbbb"
    # create_run's second look sees only earlier runs: the first run keeps "x"
    with Session(store.engine) as s:
        assert Store._free_label(s, "x", "aaaaaaaa11", before=1) == "x"


def test_create_run_corrects_a_label_it_read_too_early(tmp_path, monkeypatch):
    """The first look missed a concurrent writer's run (here: made to answer the bare label);
    the look after the insert, among the earlier runs, gives the suffix."""
    store = Store(tmp_path / "w.db")
    store.create_run(Run(scenario="x", scenario_fingerprint="aaaaaaaa11", backend="oracle"))
    real = Store._free_label

    def stale(s, base, fingerprint, *, before):
        return base if before is None else real(s, base, fingerprint, before=before)

    monkeypatch.setattr(Store, "_free_label", staticmethod(stale))
    late = store.create_run(Run(scenario="x", scenario_fingerprint="bbbbbbbb22", backend="oracle"))
    assert late.scenario_label == "x#bbbbbb" == store.get_run(late.id).scenario_label


def test_a_given_label_is_kept_and_rows_without_one_read_their_name(tmp_path):
    store = Store(tmp_path / "g.db")
    run = store.create_run(Run(scenario="s1", scenario_label="custom", backend="oracle"))
    assert run.scenario_label == "custom"
    plain = store.create_run(Run(scenario="s2", backend="oracle"))
    assert plain.scenario_label == "s2"
    assert scenario_label_of(plain.model_copy(update={"scenario_label": None})) == "s2"


def test_compare_never_pairs_two_scenarios_of_one_name(tmp_path):
    """The default baseline is chosen among runs of one scenario (fingerprint), not one name; and
    the warning names both labels."""
    from agentsim.api import simulate
    from agentsim.report import mixed_runs_warning

    res = simulate(["pointer-chase-d4", resolve_scenario("pointer-chase", {"depth": 4})], ["oracle"],
                   instances=2, db=tmp_path / "c.db")
    from agentsim.analysis import compare_runs

    rows = compare_runs(res.store, res.run_ids)
    assert [r.scenario for r in rows] == ["pointer-chase-d4"] * 2
    assert [r.baseline_run_id for r in rows] == res.run_ids  # each its own baseline
    warning = mixed_runs_warning(rows)
    assert "2 different scenarios" in warning
    assert "pointer-chase(depth=4 distractors=8)" in warning and "pointer-chase(depth=4))" in warning
    assert "same instances" in warning
    crossed = compare_runs(res.store, res.run_ids, baseline=res.run_ids[0])
    assert "another scenario" in mixed_runs_warning(crossed)


def test_results_repr_and_frames_carry_the_label(tmp_path):
    from agentsim.api import simulate

    res = simulate(["pointer-chase-d4", resolve_scenario("pointer-chase", {"depth": 4})], ["oracle"],
                   instances=2, db=tmp_path / "p.db")
    assert "pointer-chase(depth=4 distractors=8)" in repr(res) and "pointer-chase(depth=4)" in repr(res)
    frames = res.to_pandas()
    assert list(frames.runs["scenario_label"]) == ["pointer-chase(depth=4 distractors=8)", "pointer-chase(depth=4)"]
    assert frames.runs["scenario"].nunique() == 1
    assert frames.hops.groupby("scenario_label")["run_id"].nunique().to_dict() == {
        "pointer-chase(depth=4 distractors=8)": 1, "pointer-chase(depth=4)": 1}
    raw = res.to_pandas(summaries=False).runs
    assert raw["scenario_label"].nunique() == 2
