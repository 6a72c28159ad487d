"""The comparison table's title says how the baseline's weights were made, as the report does
(``source_text``): a q4_0 baseline is 'made from the q4_k_m source via f16', not 'dequantized'
(was: 'baseline = q4_0 dequantized from q4_k_m' for a single q4_0 run); and ``export --help``
says which extensions it refuses (was: 'otherwise csv', while .xlsx is refused)."""

from __future__ import annotations

import dataclasses

import pytest
from rich.console import Console

from agentsim.analysis.summary_results import CompareRow
from agentsim.report import comparison_table


@pytest.fixture(scope="module")
def summary(tmp_path_factory) -> CompareRow:
    import agentsim
    from agentsim.analysis import compare_runs
    from agentsim.store import Store

    db = tmp_path_factory.mktemp("t") / "r.db"
    agentsim.simulate("chain-linear", ["noisy,p=0.2"], instances=3, db=str(db))
    return compare_runs(Store(db), [1])[0]


def _row(summary: CompareRow, precision: str, source: str = "q4_k_m") -> CompareRow:
    return dataclasses.replace(summary, precision=precision, source_precision=source)


def _title(rows: list[CompareRow]) -> str:
    c = Console(width=200, record=True)
    c.print(comparison_table(rows))
    return " ".join(c.export_text().split())


def test_a_single_q4_0_run_is_not_called_dequantized(summary) -> None:
    title = _title([_row(summary, "q4_0")])
    assert "dequantized" not in title and "baseline = q4_0 (made from the q4_k_m source via f16)" in title, title


def test_an_f16_baseline_from_a_4bit_source_is_dequantized(summary) -> None:
    assert "baseline = f16 dequantized from q4_k_m" in _title([_row(summary, "f16")])


def test_export_help_names_the_refused_extensions(capsys) -> None:
    from agentsim.cli import main

    with pytest.raises(SystemExit):
        main(["export", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "otherwise csv" not in text and "any other extension is refused" in text
