"""A GBNF checker of our own: llama.cpp's grammar syntax, read as llama.cpp reads it, and refused
where llama.cpp would refuse it or could not run it.

Why: llama.cpp's own parser prints an error and hands back no grammar, and the sampler built on
that crashes the process (a segmentation fault), so no grammar text may reach it unchecked.
:func:`parse_gbnf` reads the syntax of llama.cpp's ``llama-grammar.cpp`` (rules ``name ::= ...``
with names of letters, digits and ``-``; literals, ``[...]`` classes, ``.``, groups,
``* + ? {m} {m,} {m,n}``, ``#`` comments, newlines ending a top-level rule) and refuses, with the
line and column, everything llama.cpp refuses *and* what it accepts but cannot run safely: left
recursion (also through rules that only derive the empty string, which llama.cpp's own check
misses and then recurses without end), ``{m,n}`` with ``n < m`` (an unsigned wrap-around in
llama.cpp), a class that matches no character, a rule that admits no finite string (root
included: "admits no string"), NUL characters, token references (``<...>``, vocabulary-dependent)
and grammars too large to expand. Whatever it accepts, llama.cpp accepts and can always continue
(every state has a way to finish); ``tests/unit/test_grammar.py`` holds that against the real
llama.cpp.

:class:`Gbnf` also recognises strings (:meth:`Gbnf.matches`: can the expected answer be
produced?) and produces the shortest string a grammar admits (:meth:`Gbnf.shortest`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

#: llama.cpp's MAX_REPETITION_THRESHOLD
MAX_REPETITION = 2000
#: the most grammar elements a grammar may expand to (repetitions unrolled); far above any answer
#: format, far below what makes llama.cpp's sampler slow
MAX_EXPANDED = 20_000
#: the most characters of grammar text
MAX_TEXT = 100_000
MAX_CODE_POINT = 0x10FFFF


class GrammarError(ValueError):
    """A grammar llama.cpp must not be given; ``line`` / ``column`` are 1-based in its text."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        self.message = message
        self.line = line
        self.column = column
        where = "" if line is None else f" (grammar line {line})" if column is None else f" (grammar line {line}, column {column})"
        super().__init__(f"{message}{where}")


# ---------------------------------------------------------------------------------------------
# the syntax tree: an alternative is a tuple of items; a rule is a tuple of alternatives


@dataclass(frozen=True)
class Lit:
    text: str


@dataclass(frozen=True)
class Cls:
    ranges: tuple[tuple[int, int], ...]
    negated: bool

    def accepts(self, c: int) -> bool:
        inside = any(lo <= c <= hi for lo, hi in self.ranges)
        return inside != self.negated

    def first(self) -> int | None:
        """The smallest-looking character the class matches (a printable one when it can)."""
        for c in (*range(ord("a"), ord("z") + 1), *range(ord("0"), ord("9") + 1), *range(0x20, 0x7F)):
            if self.accepts(c):
                return c
        if not self.negated:
            for lo, hi in self.ranges:
                if lo <= hi and lo > 0:
                    return lo
            return None
        c = 1
        for lo, hi in sorted(self.ranges):
            if lo <= c <= hi:
                c = hi + 1
        return c if c <= MAX_CODE_POINT else None


@dataclass(frozen=True)
class AnyChar:
    pass


@dataclass(frozen=True)
class Ref:
    name: str
    line: int
    column: int


@dataclass(frozen=True)
class Group:
    alts: tuple[tuple[object, ...], ...]


@dataclass(frozen=True)
class Rep:
    item: object
    min: int
    max: int | None  # None: unbounded


Alts = tuple[tuple[object, ...], ...]
_Memo = dict[tuple[str, int], frozenset[int]]

_SPACE = " \t"


def _is_word(c: str) -> bool:
    return ("a" <= c <= "z") or ("A" <= c <= "Z") or ("0" <= c <= "9") or c == "-"


class _Parser:
    """llama.cpp's recursive-descent GBNF parser, transcribed (``llama-grammar.cpp``)."""

    def __init__(self, text: str) -> None:
        self.s = text
        self.n = len(text)
        self.rules: dict[str, Alts] = {}
        self.rule_lines: dict[str, int] = {}

    # positions -------------------------------------------------------------------------------
    def where(self, pos: int) -> tuple[int, int]:
        line = self.s.count("\n", 0, pos) + 1
        return line, pos - (self.s.rfind("\n", 0, pos) + 1) + 1

    def fail(self, message: str, pos: int) -> GrammarError:
        line, col = self.where(min(pos, self.n))
        return GrammarError(message, line, col)

    def peek(self, pos: int, k: int = 0) -> str:
        return self.s[pos + k] if pos + k < self.n else ""

    def space(self, pos: int, newline_ok: bool) -> int:
        while pos < self.n:
            c = self.s[pos]
            if c == "#":
                while pos < self.n and self.s[pos] not in "\r\n":
                    pos += 1
            elif c in _SPACE or (newline_ok and c in "\r\n"):
                pos += 1
            else:
                break
        return pos

    # pieces ----------------------------------------------------------------------------------
    def name(self, pos: int) -> int:
        end = pos
        while end < self.n and _is_word(self.s[end]):
            end += 1
        if end == pos:
            raise self.fail("expecting a rule name (letters, digits and '-' only)", pos)
        return end

    def integer(self, pos: int) -> int:
        end = pos
        while end < self.n and self.s[end].isascii() and self.s[end].isdigit():
            end += 1
        if end == pos:
            raise self.fail("expecting an integer", pos)
        return end

    def char(self, pos: int) -> tuple[int, int]:
        if pos >= self.n:
            raise self.fail("unexpected end of the grammar (an unclosed quote, bracket or escape?)", pos)
        c = self.s[pos]
        if c == "\\":
            e = self.peek(pos, 1)
            sizes = {"x": 2, "u": 4, "U": 8}
            if e in sizes:
                size = sizes[e]
                digits = self.s[pos + 2 : pos + 2 + size]
                if len(digits) != size or any(d not in "0123456789abcdefABCDEF" for d in digits):
                    raise self.fail(f"expecting {size} hex digits after '\\{e}'", pos)
                value = int(digits, 16)
                if value > MAX_CODE_POINT:
                    raise self.fail(f"'\\{e}{digits}' is not a Unicode character (the largest is \\U0010FFFF)", pos)
                return value, pos + 2 + size
            simple = {"t": 9, "r": 13, "n": 10, "\\": 92, '"': 34, "[": 91, "]": 93, "-": 45}
            if e in simple:
                return simple[e], pos + 2
            raise self.fail(f"unknown escape '\\{e}' (known: \\x \\u \\U \\t \\r \\n \\\\ \\\" \\[ \\] \\-)", pos)
        return ord(c), pos + 1

    def char_nonzero(self, pos: int) -> tuple[int, int]:
        value, end = self.char(pos)
        if value == 0:
            raise self.fail("a NUL character cannot be in a grammar (llama.cpp reads it as the end)", pos)
        return value, end

    # structure -------------------------------------------------------------------------------
    def parse(self) -> None:
        pos = self.space(0, True)
        while pos < self.n:
            pos = self.rule(pos)

    def rule(self, pos: int) -> int:
        start = pos
        end = self.name(pos)
        name = self.s[pos:end]
        pos = self.space(end, False)
        if self.s[pos : pos + 3] != "::=":
            raise self.fail(f"expecting '::=' after the rule name {name!r}", pos)
        if name in self.rules:
            raise self.fail(f"rule {name!r} is defined twice (llama.cpp would keep only the last)", start)
        self.rule_lines[name] = self.where(start)[0]
        self.rules[name] = ()  # defined (filled below); a reference to itself is found by name
        pos = self.space(pos + 3, True)
        alts, pos = self.alternates(pos, nested=False)
        self.rules[name] = alts
        if self.peek(pos) == "\r":
            pos += 2 if self.peek(pos, 1) == "\n" else 1
        elif self.peek(pos) == "\n":
            pos += 1
        elif pos < self.n:
            raise self.fail(f"expecting a newline or the end, found {self.s[pos]!r}", pos)
        return self.space(pos, True)

    def alternates(self, pos: int, nested: bool) -> tuple[Alts, int]:
        seq, pos = self.sequence(pos, nested)
        alts = [seq]
        while self.peek(pos) == "|":
            pos = self.space(pos + 1, True)
            seq, pos = self.sequence(pos, nested)
            alts.append(seq)
        return tuple(alts), pos

    def sequence(self, pos: int, nested: bool) -> tuple[tuple[object, ...], int]:
        items: list[object] = []
        # llama.cpp's bookkeeping: is there an item a repetition can apply to, and how many
        # rules the last item generated (its repetition threshold multiplies them)
        last: object | None = None
        n_prev = 1
        while pos < self.n:
            c = self.s[pos]
            if c == '"':
                last, pos = self.literal(pos, nested)
                n_prev = 1
                if last is not None:
                    items.append(last)
            elif c == "[":
                cls, pos = self.char_class(pos, nested)
                last, n_prev = cls, 1
                items.append(cls)
            elif c in "<!":
                raise self.fail("token references ('<...>', '!<...>') depend on the model's vocabulary and "
                                "are not allowed in scenario grammars; write the text in quotes", pos)
            elif _is_word(c):
                end = self.name(pos)
                line, col = self.where(pos)
                last, n_prev = Ref(self.s[pos:end], line, col), 1
                items.append(last)
                pos = self.space(end, nested)
            elif c == "(":
                start = pos
                pos = self.space(pos + 1, True)
                alts, pos = self.alternates(pos, nested=True)
                if self.peek(pos) != ")":
                    raise self.fail("expecting ')' to close the group opened here", start)
                pos = self.space(pos + 1, nested)
                last = Group(alts)
                n_prev = max(1, _generated(last))
                items.append(last)
            elif c == ".":
                last, n_prev = AnyChar(), 1
                items.append(last)
                pos = self.space(pos + 1, nested)
            elif c in "*+?{":
                op = pos
                lo_n, hi_n, pos = self.repetition(pos, nested)
                if last is None or not items or items[-1] is not last:
                    raise self.fail(f"'{c}' needs an item before it to repeat", op)
                total = hi_n if (hi_n is not None and hi_n > 0) else (lo_n if lo_n > 0 else 1)
                if n_prev * total > MAX_REPETITION:
                    raise self.fail(f"nested repetitions multiply to more than {MAX_REPETITION} rules", op)
                n_prev *= total
                items.pop()
                if hi_n == 0:
                    last = None  # x{0} is nothing, and nothing can be repeated again
                else:
                    last = Rep(last, lo_n, hi_n)
                    items.append(last)
            else:
                break
        return tuple(items), pos

    def repetition(self, pos: int, nested: bool) -> tuple[int, int | None, int]:
        """The bounds of a ``*``, ``+``, ``?`` or ``{m}``/``{m,}``/``{m,n}`` at ``pos`` (None: no
        maximum), checked as llama.cpp checks them, and the position after it."""
        op = pos
        c = self.s[pos]
        if c == "{":
            pos = self.space(pos + 1, nested)
            if not (self.peek(pos).isascii() and self.peek(pos).isdigit()):
                raise self.fail("expecting a number after '{'", pos)
            end = self.integer(pos)
            lo_s = self.s[pos:end]
            pos = self.space(end, nested)
            hi_n: int | None
            if self.peek(pos) == "}":
                hi_n = None if len(lo_s) > 6 else int(lo_s)
                if hi_n is None:
                    raise self.fail("number of repetitions exceeds 2000", op)
                pos = self.space(pos + 1, nested)
                lo_n = hi_n
            elif self.peek(pos) == ",":
                pos = self.space(pos + 1, nested)
                hi_n = None
                if self.peek(pos).isascii() and self.peek(pos).isdigit():
                    end = self.integer(pos)
                    hi_s = self.s[pos:end]
                    hi_n = int(hi_s) if len(hi_s) <= 6 else MAX_REPETITION + 1
                    pos = self.space(end, nested)
                if self.peek(pos) != "}":
                    raise self.fail("expecting '}'", pos)
                pos = self.space(pos + 1, nested)
                lo_n = int(lo_s) if len(lo_s) <= 6 else MAX_REPETITION + 1
            else:
                raise self.fail("expecting ',' or '}' in a {m,n} repetition", pos)
            if lo_n > MAX_REPETITION:
                raise self.fail(f"number of repetitions exceeds {MAX_REPETITION}", op)
            if hi_n is not None and hi_n < lo_n:
                raise self.fail(f"{{{lo_n},{hi_n}}}: the maximum is below the minimum", op)
            if hi_n is not None and hi_n > MAX_REPETITION:
                hi_n = None  # llama.cpp reads a maximum over its threshold as no maximum
        else:
            pos = self.space(pos + 1, nested)
            lo_n, hi_n = {"*": (0, None), "+": (1, None), "?": (0, 1)}[c]
        return lo_n, hi_n, pos

    def literal(self, pos: int, nested: bool) -> tuple[Lit | None, int]:
        """A ``"..."`` literal at ``pos`` (None for ``""``, which matches nothing to repeat)."""
        p = pos + 1
        chars: list[str] = []
        while True:
            if p >= self.n:
                raise self.fail("unexpected end of the grammar inside a \"...\" literal", pos)
            if self.s[p] == '"':
                break
            v, p = self.char_nonzero(p)
            chars.append(chr(v))
        return (Lit("".join(chars)) if chars else None), self.space(p + 1, nested)

    def char_class(self, pos: int, nested: bool) -> tuple[Cls, int]:
        """A ``[...]`` or ``[^...]`` class at ``pos``; refused when it matches no character."""
        p = pos + 1
        negated = self.peek(p) == "^"
        if negated:
            p += 1
        ranges: list[tuple[int, int]] = []
        while True:
            if p >= self.n:
                raise self.fail("unexpected end of the grammar inside a [...] class", pos)
            if self.s[p] == "]":
                break
            lo, p = self.char_nonzero(p)
            hi = lo
            if self.peek(p) == "-" and self.peek(p, 1) != "]":
                if p + 1 >= self.n:
                    raise self.fail("unexpected end of the grammar inside a [...] class", pos)
                hi, p = self.char_nonzero(p + 1)
            ranges.append((lo, hi))
        cls = Cls(tuple(ranges), negated)
        if not ranges:
            raise self.fail("an empty class '[]' matches nothing", pos)
        if cls.first() is None:
            raise self.fail("this class matches no character (a range written high-to-low?)", pos)
        return cls, self.space(p + 1, nested)


def _generated(item: object) -> int:
    """An upper bound of the symbols llama.cpp creates for ``item`` (its group rules, the
    rules of its repetitions, and names first seen inside it)."""
    if isinstance(item, Group):
        return 1 + sum(_generated(i) for alt in item.alts for i in alt)
    if isinstance(item, Rep):
        n_opt = 1 if item.max is None else item.max - item.min
        return n_opt + _generated(item.item)
    if isinstance(item, Ref):
        return 1
    return 0


def _size(item: object) -> int:
    """How many grammar elements ``item`` becomes with its repetitions unrolled."""
    if isinstance(item, Lit):
        return max(1, len(item.text))
    if isinstance(item, Group):
        return 1 + sum(_size(i) for alt in item.alts for i in alt)
    if isinstance(item, Rep):
        return _size(item.item) * max(1, item.min, item.max or 1) + 1
    return 1


# ---------------------------------------------------------------------------------------------
# the checked grammar


@dataclass
class Gbnf:
    """A GBNF grammar that passed :func:`parse_gbnf`."""

    rules: dict[str, Alts]
    rule_lines: dict[str, int] = field(default_factory=dict)
    _shortest: dict[str, str] = field(default_factory=dict)

    def shortest(self, rule: str = "root") -> str:
        """The shortest string ``rule`` admits (every rule admits one; the parser made sure)."""
        return self._shortest[rule]

    def matches(self, text: str) -> bool | None:
        """Whether the grammar admits exactly ``text``; None when the text is too long to check."""
        if len(text) > 5000:
            return None
        memo: _Memo = {}
        limit = sys.getrecursionlimit()
        try:
            sys.setrecursionlimit(max(limit, 20_000))
            ends = self._rule("root", 0, text, memo)
        except RecursionError:
            return None
        finally:
            sys.setrecursionlimit(limit)
        return len(text) in ends

    # recognition: the set of positions where an item can end when it starts at ``i``
    def _rule(self, name: str, i: int, text: str, memo: _Memo) -> frozenset[int]:
        key = (name, i)
        got = memo.get(key)
        if got is None:
            got = self._alts(self.rules[name], i, text, memo)
            memo[key] = got
        return got

    def _alts(self, alts: Alts, i: int, text: str, memo: _Memo) -> frozenset[int]:
        out: set[int] = set()
        for alt in alts:
            out |= self._seq(alt, {i}, text, memo)
        return frozenset(out)

    def _seq(self, seq: tuple[object, ...], starts: set[int], text: str, memo: _Memo) -> set[int]:
        cur = set(starts)
        for item in seq:
            if not cur:
                break
            nxt: set[int] = set()
            for i in cur:
                nxt |= self._item(item, i, text, memo)
            cur = nxt
        return cur

    def _item(self, item: object, i: int, text: str, memo: _Memo) -> frozenset[int] | set[int]:
        if isinstance(item, Lit):
            return {i + len(item.text)} if text.startswith(item.text, i) else set()
        if isinstance(item, Cls):
            return {i + 1} if i < len(text) and item.accepts(ord(text[i])) else set()
        if isinstance(item, AnyChar):
            return {i + 1} if i < len(text) else set()
        if isinstance(item, Ref):
            return self._rule(item.name, i, text, memo)
        if isinstance(item, Group):
            return self._alts(item.alts, i, text, memo)
        assert isinstance(item, Rep)
        cur, reached, count = {i}, ({i} if item.min == 0 else set()), 0
        while cur and (item.max is None or count < item.max):
            nxt: set[int] = set()
            for j in cur:
                nxt |= self._item(item.item, j, text, memo)
            count += 1
            if count >= item.min:
                new = nxt - reached
                reached |= nxt
                if item.max is None:
                    nxt = new  # positions already reached add nothing new when unbounded
            cur = nxt
        return reached


def _nullable(rules: dict[str, Alts]) -> Callable[[object], bool]:
    """Whether an item can match the empty string (a fixed point over the rules)."""
    null = {name: False for name in rules}

    def item_null(item: object) -> bool:
        if isinstance(item, Ref):
            return null[item.name]
        if isinstance(item, Group):
            return any(all(item_null(i) for i in alt) for alt in item.alts)
        if isinstance(item, Rep):
            return item.min == 0 or item_null(item.item)
        return False

    changed = True
    while changed:
        changed = False
        for name, alts in rules.items():
            if not null[name] and any(all(item_null(i) for i in alt) for alt in alts):
                null[name] = changed = True
    return item_null


def _left_edges(rules: dict[str, Alts], item_null: Callable[[object], bool]) -> dict[str, list[Ref]]:
    """For each rule, the rules it can call before consuming any character."""
    edges: dict[str, list[Ref]] = {name: [] for name in rules}

    def walk(seq: tuple[object, ...], out: list[Ref]) -> None:
        for item in seq:
            lead(item, out)
            if not item_null(item):
                return

    def lead(item: object, out: list[Ref]) -> None:
        if isinstance(item, Ref):
            out.append(item)
        elif isinstance(item, Group):
            for alt in item.alts:
                walk(alt, out)
        elif isinstance(item, Rep):
            lead(item.item, out)

    for name, alts in rules.items():
        for alt in alts:
            walk(alt, edges[name])
    return edges


def _shortest_strings(rules: dict[str, Alts]) -> dict[str, str]:
    """The shortest string of every rule that admits one (a fixed point over the rules)."""
    best: dict[str, str] = {}

    def of(item: object) -> str | None:
        if isinstance(item, Lit):
            return item.text
        if isinstance(item, Cls):
            c = item.first()
            return None if c is None else chr(c)
        if isinstance(item, AnyChar):
            return "a"
        if isinstance(item, Ref):
            return best.get(item.name)
        if isinstance(item, Group):
            return alts_of(item.alts)
        assert isinstance(item, Rep)
        if item.min == 0:
            return ""
        one = of(item.item)
        return None if one is None else one * item.min

    def alts_of(alts: Alts) -> str | None:
        found: str | None = None
        for alt in alts:
            parts = [of(i) for i in alt]
            if any(p is None for p in parts):
                continue
            s = "".join(p for p in parts if p is not None)
            if found is None or len(s) < len(found):
                found = s
        return found

    changed = True
    while changed:
        changed = False
        for name, alts in rules.items():
            s = alts_of(alts)
            if s is not None and (name not in best or len(s) < len(best[name])):
                best[name] = s
                changed = True
    return best


def parse_gbnf(text: str) -> Gbnf:
    """Check GBNF ``text`` as described in the module docstring; a :class:`GrammarError` says
    what is wrong and where (the line and column in ``text``)."""
    if len(text) > MAX_TEXT:
        raise GrammarError(f"the grammar is {len(text):,} characters; the limit is {MAX_TEXT:,}")
    if "\x00" in text:
        raise GrammarError("a NUL character cannot be in a grammar (llama.cpp reads it as the end)")
    p = _Parser(text)
    p.parse()
    rules = p.rules
    if "root" not in rules:
        raise GrammarError("the grammar must define a 'root' rule (root ::= ...)")
    for alts in rules.values():
        for ref in _refs(alts):
            if ref.name not in rules:
                raise GrammarError(f"rule {ref.name!r} is used but never defined", ref.line, ref.column)
    size = sum(_size(i) for alts in rules.values() for alt in alts for i in alt)
    if size > MAX_EXPANDED:
        raise GrammarError(f"the grammar expands to about {size:,} elements; the limit is {MAX_EXPANDED:,}")
    item_null = _nullable(rules)
    for name, alts in rules.items():
        for item in _items(alts):
            # x* is llama.cpp's rule R ::= x R | -- left recursive when x can be empty
            if isinstance(item, Rep) and item.max is None and item_null(item.item):
                raise GrammarError("an unbounded repetition of something that can be empty is left recursion "
                                   "(llama.cpp would loop or refuse it); make the repeated part non-empty",
                                   p.rule_lines.get(name))
    edges = _left_edges(rules, item_null)
    _find_left_recursion(edges, p.rule_lines)
    best = _shortest_strings(rules)
    if "root" not in best:
        raise GrammarError("the grammar admits no string: every way through 'root' needs itself again "
                           "(or a rule that does) without end", p.rule_lines.get("root"))
    for name in rules:
        if name not in best:
            raise GrammarError(f"rule {name!r} admits no finite string (it always needs itself again); "
                               "llama.cpp could be driven into it and never finish", p.rule_lines.get(name))
    return Gbnf(rules=rules, rule_lines=p.rule_lines, _shortest=best)


def _items(alts: Alts) -> Iterator[object]:
    """Every item of ``alts``, nested ones included."""
    for alt in alts:
        for item in alt:
            yield item
            if isinstance(item, Group):
                yield from _items(item.alts)
            elif isinstance(item, Rep):
                yield from _items(((item.item,),))


def _refs(alts: Alts) -> Iterator[Ref]:
    for alt in alts:
        for item in alt:
            yield from _item_refs(item)


def _item_refs(item: object) -> Iterator[Ref]:
    if isinstance(item, Ref):
        yield item
    elif isinstance(item, Group):
        yield from _refs(item.alts)
    elif isinstance(item, Rep):
        yield from _item_refs(item.item)


def _find_left_recursion(edges: dict[str, list[Ref]], lines: dict[str, int]) -> None:
    state: dict[str, int] = {}  # 1: on the path, 2: done
    for start in edges:
        if state.get(start):
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        path: list[str] = [start]
        state[start] = 1
        while stack:
            name, k = stack[-1]
            if k < len(edges[name]):
                stack[-1] = (name, k + 1)
                nxt = edges[name][k].name
                if state.get(nxt) == 1:
                    cycle = path[path.index(nxt):] + [nxt]
                    raise GrammarError(
                        "left recursion: " + " -> ".join(repr(c) for c in cycle)
                        + " can call itself before reading a character (llama.cpp would recurse without "
                        "end); put something that is not empty first", lines.get(nxt))
                if not state.get(nxt):
                    state[nxt] = 1
                    stack.append((nxt, 0))
                    path.append(nxt)
            else:
                state[name] = 2
                stack.pop()
                path.pop()
