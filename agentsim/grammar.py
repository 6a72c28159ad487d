"""Answer-format grammars (GBNF) for hops.

A hop's ``grammar`` is either a GBNF grammar (llama.cpp's format, must define ``root``) or one of
the named presets below. Backends that can constrain decoding (``llama``) use it; others ignore it.
"""

from __future__ import annotations

import re

PRESETS: dict[str, str] = {
    "number": 'root ::= "-"? [0-9]+ ("." [0-9]+)?',
    "integer": 'root ::= "-"? [0-9]+',
    "word": "root ::= [A-Za-z] [A-Za-z_-]*",
    "words": 'root ::= [A-Za-z] [A-Za-z _-]*',
    "yesno": 'root ::= "yes" | "no"',
}

_RULE_RE = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_-]*)\s*::=", re.MULTILINE)


def resolve_grammar(grammar: str | None) -> str | None:
    """GBNF text for a hop's grammar (a preset name or GBNF itself)."""
    if grammar is None:
        return None
    g = grammar.strip()
    if g in PRESETS:
        return PRESETS[g]
    if g.startswith("choice:"):
        options = [o.strip() for o in g[len("choice:") :].split("|") if o.strip()]
        return "root ::= " + " | ".join('"' + o.replace('"', '\\"') + '"' for o in options)
    return g


def check_grammar(grammar: str) -> str | None:
    """A problem with a grammar (as a message), or None when it looks well-formed."""
    g = grammar.strip()
    if g in PRESETS:
        return None
    if g.startswith("choice:"):
        if not [o for o in g[len("choice:") :].split("|") if o.strip()]:
            return "grammar 'choice:' needs options, e.g. 'choice:yes|no'"
        return None
    rules = _RULE_RE.findall(g)
    if not rules:
        return (
            f"grammar is neither a preset ({', '.join(PRESETS)}, choice:a|b) nor GBNF "
            "(no 'name ::= ...' rule)"
        )
    if "root" not in rules:
        return "GBNF grammar must define a 'root' rule"
    return None
