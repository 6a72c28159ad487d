"""Answer-format grammars for hops: presets, ``choice:a|b`` and GBNF (llama.cpp's format).

A hop's ``grammar`` is either a GBNF grammar (must define ``root``) or one of the named presets
below (or ``choice:a|b``). Backends that can constrain decoding (``llama``, and ``openai``
servers that take GBNF) use it; the ``oracle`` answers through it; others ignore it. Every
grammar is checked by :mod:`agentsim.gbnf` before anything is given it.
"""

from __future__ import annotations

import functools

from agentsim.gbnf import Gbnf, GrammarError, parse_gbnf

__all__ = ["PRESETS", "Gbnf", "GrammarError", "check_grammar", "choice_options", "compile_grammar",
           "parse_gbnf", "resolve_grammar"]

PRESETS: dict[str, str] = {
    "number": 'root ::= "-"? [0-9]+ ("." [0-9]+)?',
    "integer": 'root ::= "-"? [0-9]+',
    "word": "root ::= [A-Za-z] [A-Za-z_-]*",
    "words": 'root ::= [A-Za-z] [A-Za-z _-]*',
    "yesno": 'root ::= "yes" | "no"',
    # any JSON object (OpenAI's response_format {"type": "json_object"} in agentsim serve)
    "json": r'''root ::= object
value ::= object | array | string | number | ("true" | "false" | "null") ws
object ::= "{" ws ( string ":" ws value ("," ws string ":" ws value)* )? "}" ws
array ::= "[" ws ( value ("," ws value)* )? "]" ws
string ::= "\"" ( [^"\\\x7F\x01-\x1F] | "\\" (["\\bfnrt] | "u" [0-9a-fA-F]{4}) )* "\"" ws
number ::= ("-"? ([0-9] | [1-9] [0-9]{0,15})) ("." [0-9]+)? ([eE] [-+]? [0-9] [1-9]{0,15})? ws
ws ::= | " " | "\n" [ \t]{0,20}''',
}


# ---------------------------------------------------------------------------------------------
# hop grammars: presets, choices, GBNF


def _quote(option: str) -> str:
    out = []
    for ch in option:
        if ch in '"\\[]':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def choice_options(grammar: str) -> list[str]:
    return [o.strip() for o in grammar.strip()[len("choice:"):].split("|") if o.strip()]


def resolve_grammar(grammar: str | None) -> str | None:
    """GBNF text for a hop's grammar (a preset name or GBNF itself)."""
    if grammar is None:
        return None
    g = grammar.strip()
    if g in PRESETS:
        return PRESETS[g]
    if g.startswith("choice:"):
        return "root ::= " + " | ".join(_quote(o) for o in choice_options(g))
    return g


@functools.lru_cache(maxsize=256)
def compile_grammar(grammar: str) -> Gbnf:
    """The checked grammar of a hop's ``grammar`` field (raises :class:`GrammarError`)."""
    g = grammar.strip()
    if g.startswith("choice:") and not choice_options(g):
        raise GrammarError("grammar 'choice:' needs options, e.g. 'choice:yes|no'")
    if g not in PRESETS and not g.startswith("choice:") and "::=" not in g:
        raise GrammarError(
            f"grammar is neither a preset ({', '.join(PRESETS)}, choice:a|b) nor GBNF "
            "(no 'name ::= ...' rule)")
    text = resolve_grammar(g)
    assert text is not None
    return parse_gbnf(text)


def check_grammar(grammar: str) -> str | None:
    """A problem with a grammar (as a message), or None when llama.cpp can be given it."""
    try:
        compile_grammar(grammar)
    except GrammarError as exc:
        return str(exc)
    return None
