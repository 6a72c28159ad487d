"""Excerpts of real output in README.md and docs/*.md, regenerated from a run so they cannot drift.

A block of output in a Markdown file is an excerpt when it sits between two markers::

    <!-- excerpt NAME -->
    ```
    ...what the commands print...
    ```
    <!-- /excerpt -->

and :data:`EXCERPTS` has a function for ``NAME`` that produces the block's text by running the
commands it shows (model-free backends only, so this is cheap enough for the default test tier:
``tests/e2e/test_readme_excerpts.py`` compares every excerpt with what its function prints now).
When output changes on purpose, regenerate them all::

    .venv/bin/python -m tests.readme_excerpts --write

The demo's table and verdicts come from the real model (minutes, not seconds): they are checked
against a fresh demo run in the slow tier (``tests/e2e/test_readme_demo_run.py``).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"<!-- excerpt ([\w-]+) -->\n```\n(.*?)```\n<!-- /excerpt -->", re.S)


def _cli(args: list[str], cwd: Path, columns: int = 80) -> str:
    """``agentsim ARGS`` in-process at ``columns`` columns: stdout and stderr, as a terminal shows them."""
    from agentsim.cli import main

    old_cwd, old_cols = Path.cwd(), os.environ.get("COLUMNS")
    buf = io.StringIO()
    os.environ["COLUMNS"] = str(columns)
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            try:
                main(args)
            except SystemExit:
                pass
    finally:
        os.chdir(old_cwd)
        if old_cols is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old_cols
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines()) + "\n"


def report_noisy(tmp: Path) -> str:
    import agentsim

    agentsim.simulate("chain-arith", ["noisy,p=0.05,seed=1", "noisy,p=0.2,seed=1"], params={"depth": 4},
                      instances=60, seed=2, mode="both", db=str(tmp / "runs.db"))
    out = _cli(["report", "--db", "runs.db"], tmp)
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("verdicts"))
    end = lines.index("", start) if "" in lines[start:] else len(lines)
    return ("$ python -c 'import agentsim; agentsim.simulate(\"chain-arith\", [\"noisy,p=0.05,seed=1\",\n"
            "    \"noisy,p=0.2,seed=1\"], params={\"depth\": 4}, instances=60, seed=2, mode=\"both\", db=\"runs.db\")'\n"
            "$ agentsim report --db runs.db          # at 80 columns; its verdicts section\n"
            + "\n".join(lines[start:end]) + "\n")


BAD = "name: x\nhops:\n  - id: a\n    prompt: 'hi {{ who }}'\n    expect: 1\n"


def validate_bad(tmp: Path) -> str:
    (tmp / "bad.yaml").write_text(BAD, encoding="utf-8")
    return "$ agentsim validate bad.yaml\n" + _cli(["validate", "bad.yaml"], tmp, columns=200)


GRAMMARS = (
    "name: complaint\nhops:\n"
    "  - id: kind\n    prompt: What went wrong with the order? One word.\n    expect: \"'wrong_item'\"\n"
    "    parse: text\n    grammar: 'choice:damaged|late|wrong|billing'\n"
    "  - id: refund\n    depends_on: [kind]\n    prompt: 'Refund for {{ kind }}? Reply with a number.'\n"
    "    expect: 10\n    parse: integer\n    grammar: 'root ::= ( [0-9'\n"
)


def validate_grammars(tmp: Path) -> str:
    (tmp / "complaint.yaml").write_text(GRAMMARS, encoding="utf-8")
    fixed = GRAMMARS.replace("root ::= ( [0-9", "root ::= [0-9]+")
    (tmp / "complaint-fixed.yaml").write_text(fixed, encoding="utf-8")
    return ("$ agentsim validate complaint.yaml\n" + _cli(["validate", "complaint.yaml"], tmp, columns=200)
            + "$ agentsim validate --strict complaint-fixed.yaml   # the grammar fixed; the choice still lacks the answer\n"
            + _cli(["validate", "--strict", "complaint-fixed.yaml"], tmp, columns=200)
            + "$ agentsim run complaint-fixed.yaml -b oracle -n 5 --db c.db   # the oracle answers through the grammar\n"
            + "\n".join(line for line in _cli(["run", "complaint-fixed.yaml", "-b", "oracle", "-n", "5", "--db", "c.db"],
                                               tmp, columns=200).splitlines()
                        if line.startswith("run 1:")) + "\n")


EXCERPTS: dict[str, Callable[[Path], str]] = {
    "report-noisy": report_noisy,
    "validate-bad": validate_bad,
    "validate-grammars": validate_grammars,
}


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def generate(name: str) -> str:
    with tempfile.TemporaryDirectory() as d:
        env = {k: os.environ.get(k) for k in ("AGENTSIM_HOME", "AGENTSIM_DB", "AGENTSIM_LIMITS", "AGENTSIM_TRUST")}
        os.environ["AGENTSIM_HOME"] = str(Path(d) / "home")
        for k in ("AGENTSIM_DB", "AGENTSIM_LIMITS", "AGENTSIM_TRUST"):
            os.environ.pop(k, None)
        try:
            return EXCERPTS[name](Path(d))
        finally:
            for k, v in env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def found() -> list[tuple[Path, str, str]]:
    """Every excerpt in the documents: (file, name, the text it holds now)."""
    return [(p, m.group(1), m.group(2)) for p in documents() for m in MARKER.finditer(p.read_text(encoding="utf-8"))]


def write() -> None:
    for p in documents():
        text = p.read_text(encoding="utf-8")
        new = MARKER.sub(lambda m: f"<!-- excerpt {m.group(1)} -->\n```\n{generate(m.group(1))}```\n<!-- /excerpt -->",
                         text)
        if new != text:
            p.write_text(new, encoding="utf-8")
            print(f"updated {p.relative_to(ROOT)}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write()
    else:
        for p, name, _ in found():
            print(f"{p.relative_to(ROOT)}: {name}")
