"""agentsim.simulate's keywords: each one a Launch field, with Launch's defaults."""

from __future__ import annotations

import dataclasses

import pytest

import agentsim
from agentsim.api import _LAUNCH_FIELD, LaunchKeywords
from agentsim.launch import Launch


def test_every_launch_keyword_is_a_launch_field():
    fields = {f.name for f in dataclasses.fields(Launch)}
    for key in LaunchKeywords.__annotations__:
        assert _LAUNCH_FIELD.get(key, key) in fields, key
    assert set(_LAUNCH_FIELD) <= set(LaunchKeywords.__annotations__)


def test_simulate_takes_the_documented_keywords(tmp_path):
    res = agentsim.simulate("chain-linear", ["oracle"], instances=3, seed=2, mode="both",
                            db=tmp_path / "a.db", params=None, energy="off", batch=[1, 2],
                            executor=None, progress=None, raise_on_failure=True)
    assert sorted((r.mode, r.batch_size, r.n_instances, r.seed) for r in res.runs) == [
        ("free", 1, 3, 2), ("free", 2, 3, 2), ("oracle", 1, 3, 2), ("oracle", 2, 3, 2)]


def test_simulate_defaults_are_launchs(tmp_path):
    (run,) = agentsim.simulate("chain-linear", "oracle", db=tmp_path / "a.db").runs
    launch = Launch(scenarios=["chain-linear"], backends=["oracle"])
    assert (run.n_instances, run.seed, run.mode, run.batch_size) == (
        launch.instances, launch.seed, "free", 1)


def test_an_unknown_keyword_is_a_type_error(tmp_path):
    with pytest.raises(TypeError, match="'instance'"):
        agentsim.simulate("chain-linear", "oracle", db=tmp_path / "a.db", instance=3)
