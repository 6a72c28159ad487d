"""docs/errors.md's table of user errors, run row by row: each command, as written there, exits
with the status the table gives and says the quoted words, without a traceback and without
creating a database where none was.

The commands run in-process (``agentsim.cli.main``), in a folder holding the files the table
names, with a model cache of one model (``tiny``, only its f16 rung)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "errors.md"
ROW = re.compile(r"^\| `agentsim ([^`]+)` \| (\d+) \| \"(.+)\" \|$")

FILES = {
    "undeclared.yaml": "name: s\nhops:\n  - id: a\n    prompt: 'hi {{ who }}'\n    expect: 1\n",
    "bad-grammar.yaml": "name: s\nhops:\n  - id: h\n    prompt: say a number\n    expect: 1\n"
                        "    parse: integer\n    grammar: 'root ::= ( [0-9'\n",
    "no-string.yaml": "name: s\nhops:\n  - id: h\n    prompt: say x\n    expect: \"'x'\"\n"
                      "    parse: text\n    grammar: 'root ::= \"x\" root'\n",
    "big-number.yaml": 'name: big\nvars: {big: {expr: "10 ** 5000"}}\nhops:\n  - id: h\n'
                       '    prompt: "what is {{ big }}?"\n    expect: "1"\n',
    "unanswerable.yaml": "name: s\nhops:\n  - id: kind\n    prompt: What went wrong?\n"
                         "    expect: \"'wrong_item'\"\n    parse: text\n"
                         "    grammar: 'choice:damaged|late|wrong|billing'\n",
}


def table_rows() -> list[tuple[str, int, str]]:
    rows = [(m.group(1), int(m.group(2)), m.group(3)) for line in DOC.read_text(encoding="utf-8").splitlines()
            if (m := ROW.match(line))]
    assert len(rows) >= 25, "docs/errors.md lists the user errors"
    return rows


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("errors")
    for name, text in FILES.items():
        (d / name).write_text(text, encoding="utf-8")
    return d


@pytest.fixture
def sandbox(place: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from agentsim import models
    from agentsim.cli import main
    from tests.tiny_models import write_tiny_gguf

    monkeypatch.chdir(place)
    monkeypatch.setenv("AGENTSIM_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("AGENTSIM_DEBUG", raising=False)
    if importlib_spec("llama_cpp"):
        tiny = write_tiny_gguf(tmp_path / "tiny-f16.gguf", seed=0, dtype="f16")
        models.add(tiny, name="tiny")
        models.prepare("tiny", ["f16"])
    db = tmp_path / "db.db"
    assert main(["run", "chain-linear", "-b", "oracle", "-n", "1", "--db", str(db)]) == 0
    return db


def importlib_spec(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


@pytest.mark.parametrize(("command", "code", "words"), table_rows(), ids=[r[0] for r in table_rows()])
def test_each_user_error_in_the_table(sandbox: Path, tmp_path: Path, capsys, command: str, code: int,
                                      words: str) -> None:
    from agentsim.cli import main

    if "llama:" in command and not importlib_spec("llama_cpp"):
        pytest.skip("needs llama-cpp-python (pip install agentsim[llama])")
    new = tmp_path / "NEW.db"
    args = [str(sandbox) if a == "DB" else str(new) if a == "NEW.db" else a for a in shlex.split(command)]
    try:
        rc = main(args)
    except SystemExit as exc:  # argparse's own errors
        rc = int(exc.code or 0)
    out = capsys.readouterr()
    text = " ".join((out.out + out.err).split())
    assert rc == code, f"agentsim {command}: exit {rc}\n{text}"
    assert " ".join(words.split()) in text, f"agentsim {command}: {text}"
    assert "Traceback" not in text and "internal error" not in text
    assert not new.exists() and not Path(str(new) + "-wal").exists(), "a failing command created the database"
