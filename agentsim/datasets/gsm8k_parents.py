"""Which earlier step's result each number of a GSM8K step's calculation is (its *parents*).

A step's annotation (``<<30*3=90>>``) writes numbers, not references: ``90+90`` may be two
earlier results, one result and a constant of the problem, or two constants. This module reads
every number literal of every step as either a **constant** or **an earlier step's result**
(``s_j``, or ``s_j / 100`` where a percentage is written as a fraction: step 2 finds 40 (%), step
3 divides by ``.4``), choosing the reading of the whole problem at once.

Candidates for a literal ``v`` in step ``k``:

- every earlier step ``j < k`` whose result is ``v`` (``v * 100`` for a percentage written as a
  fraction, when step ``j``'s sentence writes its result as a percentage and neither ``v`` nor
  ``v * 100`` is written in the problem);
- a constant, when ``v`` is written in the problem (digits, a number word such as *two*,
  *twice*, *half*, *dozen*, a percentage as its fraction, a fraction ``a/b`` as its value), is a
  unit constant whose unit the step's sentence names next to it (12 months, 60 minutes, 100
  cents, ...) or is spelled as a word in the step's own sentence; a value a calculation writes
  twice that would otherwise be one step's result read twice, making the calculation a constant
  (``3/3``, ``s1/s1``: $3.00 for 3 scoops). A literal equal to no earlier result is a constant,
  and one equal to an earlier result but to no constant is a result.

Among all combinations (every literal one reading) the one kept is best in this order:

1. **coverage**: the most earlier steps whose result is used by some later calculation (a
   solution uses what it computes);
2. **equal results used together**: a sum holding a value as many times as there are
   earlier steps with that result reads them as those steps (``90+90``, Carlos's and Benji's);
3. **text evidence**: the words around the number in the step's sentence (``he needs 2 pounds``,
   ``200 hours * $50/hour``, ``20 candles``) shared with the words around that number in the
   problem (a constant) or with the sub-question and the words after the result of the candidate
   step (``<<20/10=2>>2 pounds of beeswax``); a name the step speaks of that one candidate is
   about while every other is about someone else (``Alani had written 40+20``: Alani's 40, not
   Braylen's; names every sub-question holds do not count); an amount of money in the
   calculation (``$150 + $3``) where the only other candidates are the problem's numbers that are
   not money (a 3-month installment); the 100 dividing a percentage (``100*(40/100)``);
4. **a constant used again**: a number the step before read as a constant is read as that
   constant again (``20*2`` then ``40+20``: the 20 is the problem's, the 40 step 1's);
5. **no step read twice in one calculation** when another reading exists (``90+90`` with two
   steps resulting in 90 is both of them, ``2/2`` with one is not ``s4 / s4``), nor, outside a
   sum, two steps of equal results (``2/2`` is not ``s1 / s4``: as degenerate);
6. **fewest numbers of the problem read as results** (a number written in the problem is
   its constant unless something above says otherwise);
7. fallbacks: the reading one word of text evidence points to (too little to decide alone:
   ``can be made at 50 quarts`` shares *made* with the wrong step), then an ambiguous literal is
   the result in the *latest* calculation that can use it, and a literal is the *latest* step
   with its value.

A step whose parents or calculation differ between combinations that tie on 1-6 (the choice was
made by the fallbacks only) is flagged ``parents_uncertain``, and so is a step whose annotation
holds no calculation (``<<15=15>>``) that the sentence does not spell out either. Such an
annotation is first replaced by the calculation written just before it in the sentence
(``7.5 / .5 = <<15=15>>15`` is ``7.5/.5``) when that gives the result.

A literal that is a constant no rule above explains (not in the problem, not a unit constant)
and that an earlier step's calculation holds while that step's result was already known (an
earlier result, or a number of the problem) means that step checks the number it states with an
inverse calculation, so its annotation is not its sub-question's answer (line 37: "How many lego
sets did John sell? He sold 11 lego sets because 11 x 15 = <<11*15=165>>165", 165 being step 2's
result; step 4 then uses 11): the problem is skipped as ``annotation-not-answer``.
"""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

__all__ = ["StepSource", "Reading", "ParentsResult", "read_parents", "question_numbers", "recover_calculation"]

_NUMBER_RE = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?|(?<![\w\d])\.\d+")
_FRACTION_RE = re.compile(r"(?<![\w.])(\d+)\s*/\s*(\d+)(?![\d.])")
_PERCENT_RE = re.compile(r"(\d[\d,]*(?:\.\d+)?)\s*(?:%|percent)")
_WORD_RE = re.compile(r"[a-z]+")

#: number words: each maps to the values it can stand for in a calculation
_NUMBER_WORDS: dict[str, tuple[Fraction, ...]] = {
    w: (Fraction(n),)
    for n, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
}
_NUMBER_WORDS.update({
    "thirty": (Fraction(30),), "forty": (Fraction(40),), "fifty": (Fraction(50),),
    "sixty": (Fraction(60),), "seventy": (Fraction(70),), "eighty": (Fraction(80),),
    "ninety": (Fraction(90),), "hundred": (Fraction(100),), "thousand": (Fraction(1000),),
    "dozen": (Fraction(12),), "dozens": (Fraction(12),),
    "twice": (Fraction(2),), "double": (Fraction(2),), "doubles": (Fraction(2),), "doubled": (Fraction(2),),
    "half": (Fraction(2), Fraction(1, 2)), "halves": (Fraction(2), Fraction(1, 2)),
    "triple": (Fraction(3),), "triples": (Fraction(3),), "tripled": (Fraction(3),), "thrice": (Fraction(3),),
    "third": (Fraction(3), Fraction(1, 3)), "thirds": (Fraction(3),),
    "quarter": (Fraction(4), Fraction(1, 4)), "quarters": (Fraction(4),),
    "fourth": (Fraction(4),), "fourths": (Fraction(4),), "fifth": (Fraction(5),), "fifths": (Fraction(5),),
    "quadruple": (Fraction(4),), "pair": (Fraction(2),), "pairs": (Fraction(2),), "couple": (Fraction(2),),
})

#: unit constants a solution writes without the problem saying them
_UNIT_CONSTANTS: dict[Fraction, frozenset[str]] = {
    Fraction(n): frozenset(units.split()) for n, units in (
        (7, "day week"), (12, "month inch dozen year foot feet"), (24, "hour day"), (30, "day month"),
        (52, "week year"), (60, "minute second hour"), (100, "cent percent dollar"), (365, "day year"),
        (1000, "gram meter milliliter ml"), (3600, "second hour"), (5280, "feet foot mile"))}
#: words shared with the candidate's words: evidence from two (a unit constant's unit or a number word in the sentence counts three)
_EVIDENCE_MIN = 2
_EVIDENCE_STRONG = 3

_STOP = frozenset(
    "a an the and or of to in on at for by with from is are was were be been has have had do does did "
    "how many much what which that this these those it its he she they them his her their him we you "
    "i so then than as if each per there here will would can could should more less total all also "
    "after before into out up about over every one who whom whose but not no just only same x".split()
)


@dataclass(frozen=True)
class StepSource:
    """What the reader needs of one step."""

    question: str  # the sub-question
    before: str  # the sentence before the annotation
    after: str  # the sentence after the annotation (starts with the result as written)
    source: str  # the calculation (after any recovery)
    body: ast.expr
    result: Fraction
    bare: bool = False  # the annotation held no calculation and none could be recovered


@dataclass(frozen=True)
class Reading:
    """A literal read as ``s_step * scale`` (``step`` None: the literal is a constant)."""

    step: int | None
    scale: Fraction = Fraction(1)


@dataclass(frozen=True)
class ParentsResult:
    variables: tuple[dict[int, Reading], ...]  # per step: literal offset -> its reading
    uncertain: tuple[bool, ...]
    ambiguous_as_step: int
    ambiguous_as_constant: int
    not_answer: tuple[int, ...]  # steps whose stated answer is not their annotation's result


def _words(text: str) -> list[str]:
    return [_stem(w) for w in _WORD_RE.findall(text.lower().replace("’", "'"))]


def _stem(w: str) -> str:
    if w.endswith("'s"):
        w = w[:-2]
    if len(w) > 5 and w.endswith("ing"):
        w = w[:-3]
    elif len(w) > 4 and w.endswith("es") and w[-3] in "sxh":
        w = w[:-2]
    elif len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
        w = w[:-1]
    return w


def _value(text: str) -> Fraction | None:
    try:
        return Fraction(text.replace(",", ""))
    except (ValueError, ZeroDivisionError):
        return None


def _mentions(text: str) -> list[tuple[Fraction, int, int]]:
    """(value, start, end) of every number written in ``text``, digits or a number word."""
    out: list[tuple[Fraction, int, int]] = []
    for m in _NUMBER_RE.finditer(text):
        v = _value(m.group())
        if v is not None:
            out.append((v, m.start(), m.end()))
    for m in re.finditer(r"[A-Za-z]+", text):
        for v in _NUMBER_WORDS.get(m.group().lower(), ()):
            out.append((v, m.start(), m.end()))
    return out


def question_numbers(question: str) -> set[Fraction]:
    """Every value the problem text writes: numbers, number words, percentages (40 % is also
    0.4) and fractions (1/4 is also 0.25)."""
    out = {v for v, _s, _e in _mentions(question)}
    for m in _PERCENT_RE.finditer(question):
        v = _value(m.group(1))
        if v is not None:
            out.add(v / 100)
    for m in _FRACTION_RE.finditer(question):
        if int(m.group(2)):
            out.add(Fraction(int(m.group(1)), int(m.group(2))))
    return out


def _window(text: str, start: int, end: int, width: int = 4) -> set[str]:
    text = text.replace("%", " percent ")
    start, end = (len(text[:start].replace("%", " percent ")), len(text[:end].replace("%", " percent ")))
    # the words on the number's side of an "=": "100 + 200 + 200 = 500 cents" says nothing of 100
    before = _WORD_RE.findall(text[:start].rpartition("=")[2].lower())[-width:]
    after = _WORD_RE.findall(text[end:].partition("=")[0].lower())[:width]
    return {_stem(w) for w in before + after} - _STOP


def _signature(text: str, value: Fraction) -> set[str]:
    """The words around every mention of ``value`` in ``text``."""
    out: set[str] = set()
    for v, s, e in _mentions(text):
        if v == value:
            out |= _window(text, s, e)
    return out


def recover_calculation(before: str) -> str | None:
    """The calculation written just before an annotation (``... 7.5 / .5 = ``), or None."""
    tail = re.sub(r"[\s$=]+$", "", before)
    m = re.search(r"[\d.,$()\s+\-*/x×]+$", tail)
    if not m:
        return None
    text = m.group().replace("×", "*").replace("x", "*").replace("$", "").replace(",", "").strip()
    text = text.lstrip("*+/").strip()
    if not re.search(r"\d\s*[-+*/]\s*[\d.(]", text):
        return None
    return text


def _literals(body: ast.expr) -> list[ast.Constant]:
    return sorted((n for n in ast.walk(body) if isinstance(n, ast.Constant)), key=lambda n: n.col_offset)


def _literal_value(node: ast.Constant, source: str) -> Fraction:
    text = ast.get_source_segment(source, node) or repr(node.value)
    try:
        return Fraction(text)
    except ValueError:
        return Fraction(node.value)


@dataclass
class _Slot:
    """One literal with more than one possible reading."""

    step: int
    offset: int
    value: Fraction
    candidates: list[Reading]
    ambiguous: bool  # a constant is among the candidates
    evidence: dict[Reading, int]  # text evidence for each candidate (0 or 1)


_MAX_COMBINATIONS = 50_000


@dataclass
class _Problem:
    """What every literal's reading looks at: the problem's numbers and each step's words."""

    question: str
    steps: Sequence[StepSource]
    qnums: set[Fraction]
    results: list[Fraction]
    #: a result's words: its sub-question's and those just after it (``<<20/10=2>>2 pounds``)
    step_sigs: list[set[str]]
    #: steps whose sentence writes their result as a percentage ("40% of his total bill")
    percents: list[bool]
    #: the problem's names (capitalised words inside a sentence: Alani, Braylen, Monday), stemmed
    names: set[str]
    #: steps whose sentence writes their result as money (``$<<30*3=90>>90``)
    money: list[bool]
    qsig_cache: dict[Fraction, set[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, question: str, steps: Sequence[StepSource]) -> _Problem:
        return cls(
            question=question, steps=steps, qnums=question_numbers(question),
            results=[s.result for s in steps],
            step_sigs=[(set(_words(s.question)) - _STOP) | _window(s.after, 0, 0, 5) for s in steps],
            percents=[any(_value(m.group(1)) == st.result for m in _PERCENT_RE.finditer(st.before + " " + st.after))
                      for st in steps],
            names=_names(question, steps),
            money=[st.before.rstrip().endswith("$") or _as_money(st.before, st.result) for st in steps],
        )

    def candidate_names(self, c: Reading, value: Fraction) -> set[str]:
        """The names a candidate is about: those of its sub-question, or near the number in the problem."""
        words = self.question_signature(value) if c.step is None else set(_words(self.steps[c.step].question))
        return words & self.names

    def candidate_money(self, c: Reading, value: Fraction) -> bool:
        return _as_money(self.question, value) if c.step is None else self.money[c.step]

    def question_signature(self, value: Fraction) -> set[str]:
        if value not in self.qsig_cache:
            self.qsig_cache[value] = _signature(self.question, value)
        return self.qsig_cache[value]


@dataclass
class _Literals:
    """Every literal of every step: those with one reading, those with several (the slots)."""

    fixed: list[dict[int, Reading]]  # per step: literal offset -> its only reading (a result)
    slots: list[_Slot]
    constants: list[tuple[int, Fraction]]  # (step, value) of literals that can only be constants


def _collect_literals(pb: _Problem) -> _Literals:
    """Each literal's candidate readings: a constant only, one earlier result only, or a slot."""
    out = _Literals(fixed=[{} for _ in pb.steps], slots=[], constants=[])
    for k, st in enumerate(pb.steps):
        sentence = st.before + " " + st.after
        in_sentence = {v for v, _s, _e in _mentions(sentence)}
        word_values = {v for w in _WORD_RE.findall(st.before.lower()) for v in _NUMBER_WORDS.get(w, ())}
        # a fraction the problem writes (``8*1/4`` with "1/4" in the problem): both numbers constants
        in_fraction = {m.start(g) for m in _FRACTION_RE.finditer(st.source)
                       if f"{m.group(1)}/{m.group(2)}" in pb.question.replace(" ", "") for g in (1, 2)}
        twice = _repeated_results(pb, k)
        per_hundred = _percent_divisors(pb, k)
        for node in _literals(st.body):
            v = _literal_value(node, st.source)
            cands = [] if node.col_offset in in_fraction else _result_candidates(pb, k, v)
            if not cands:
                out.constants.append((k, v))
                continue
            # a unit constant only where the sentence names its unit next to it ("12 months")
            unit_named = bool(_signature(sentence, v) & _UNIT_CONSTANTS.get(v, frozenset()))
            # 100 in a calculation of a percentage ("100-60=40% of the groceries") is the whole
            unit_named |= v == 100 and bool(re.match(r"\s*\$?[\d.,]+\s*(?:%|percent)", st.after))
            constant_ok = v in pb.qnums or unit_named or v in word_values or v in twice
            if constant_ok:
                cands.append(Reading(None))
            if len(cands) == 1:
                out.fixed[k][node.col_offset] = cands[0]
                continue
            # text evidence: the words around this number in the step's sentence
            around = _signature(sentence, v) if v in in_sentence or v in word_values else set()
            about = _Mention(around, v in word_values, set(_words(f"{st.question} {sentence}")) & pb.names,
                             _as_money(_calculation_text(st.before), v), node.col_offset in per_hundred)
            evidence = _evidence(pb, v, cands, about)
            out.slots.append(_Slot(k, node.col_offset, v, cands, constant_ok, evidence))
    return out


def _repeated_results(pb: _Problem, k: int) -> set[Fraction]:
    """Values step ``k``'s calculation writes more than once that only one earlier step has as its
    result, where reading every copy as that step makes the calculation a constant (``3/3``: $3.00
    for 3 scoops would be ``s1/s1``, always 1): each copy may then be a constant too (rule 5 keeps
    one of them the step's). ``15*1 + 15*2`` (the same 15 sheep twice) is not such a case."""
    st = pb.steps[k]
    values = [_literal_value(node, st.source) for node in _literals(st.body)]
    out: set[Fraction] = set()
    for v in {v for v in values if values.count(v) > 1 and pb.results[:k].count(v) == 1}:
        def at(x: Fraction, v: Fraction = v) -> Fraction:
            return fold_arithmetic(st.body, lambda n: x if _literal_value(n, st.source) == v
                                   else _literal_value(n, st.source), zero_division=Fraction(0))
        if at(Fraction(1000003, 97)) == at(Fraction(7919, 13)):
            out.add(v)
    return out


def _percent_divisors(pb: _Problem, k: int) -> set[int]:
    """Offsets of the literals 100 that divide a percentage (``40/100``, 40 a step's percentage or
    the problem's): the hundred of *per cent*, not an earlier result of 100."""
    st = pb.steps[k]
    percentages = {v for m in _PERCENT_RE.finditer(pb.question) if (v := _value(m.group(1))) is not None}
    percentages |= {r for r, pc in zip(pb.results[:k], pb.percents, strict=False) if pc}
    out: set[int] = set()
    for n in ast.walk(st.body):
        if not (isinstance(n, ast.BinOp) and isinstance(n.op, ast.Div) and isinstance(n.right, ast.Constant)):
            continue
        left = n.left  # the number just before the "/100" (``100*40/100``: the 40)
        while isinstance(left, ast.BinOp):
            left = left.right
        if (isinstance(left, ast.Constant) and _literal_value(n.right, st.source) == 100
                and _literal_value(left, st.source) in percentages):
            out.add(n.right.col_offset)
    return out


def _names(question: str, steps: Sequence[StepSource]) -> set[str]:
    """The names that tell steps apart: the capitalised words the problem and its solution write
    inside a sentence (people, places, days), less those every sub-question names (the one the
    whole problem is about: Jason, in each of his chores)."""
    text = " ".join([question, *(f"{st.question} {st.before} {st.after}" for st in steps)])
    out = set()
    for m in re.finditer(r"(?<=[a-z,;:] )[A-Z][a-z]+", text.replace("’", "'")):
        w = _stem(m.group().lower())
        if w not in _STOP and w not in _NUMBER_WORDS:
            out.add(w)
    return out - set.intersection(*(set(_words(st.question)) for st in steps)) if steps else out


def _as_money(text: str, value: Fraction) -> bool:
    """``text`` writes ``value`` as an amount of money (``$3``, ``$ 3.00``)."""
    return any(v == value and text[:s].rstrip().endswith("$") for v, s, _e in _mentions(text))


def _calculation_text(before: str) -> str:
    """The calculation a sentence writes just before its annotation (``costs $150 + $3 = ``: ``$150 + $3``)."""
    m = re.search(r"[\d.,$()\s+\-*/x×]+$", re.sub(r"[\s=$]+$", "", before))
    return m.group() if m else ""


def _result_candidates(pb: _Problem, k: int, v: Fraction) -> list[Reading]:
    """The earlier steps whose result a literal ``v`` of step ``k`` can be, latest first."""
    cands = [Reading(j) for j in range(k - 1, -1, -1) if pb.results[j] == v]
    if v < 1 and v * 100 not in pb.qnums and v not in pb.qnums:
        cands += [Reading(j, Fraction(1, 100)) for j in range(k - 1, -1, -1)
                  if pb.results[j] == v * 100 and pb.percents[j]]
    return cands


@dataclass(frozen=True)
class _Mention:
    """How a step writes one literal: the words around it, whether it is a number word there, the
    names its sub-question and sentence speak of, and whether it is written as money."""

    around: set[str]
    is_word: bool
    names: set[str]
    money: bool
    per_hundred: bool  # a 100 dividing a percentage


def _evidence(pb: _Problem, v: Fraction, cands: list[Reading], about: _Mention) -> dict[Reading, int]:
    """For each candidate: 2 if it is the one the words around the literal point to, 1 if only one
    word does (a name does not count alone: the step's own subject is often another's), else 0."""
    if about.per_hundred:  # the words around a value cannot tell its copies apart; this can
        return {c: 2 * (c.step is None) for c in cands}
    sigs = {c: (pb.question_signature(v) if c.step is None else pb.step_sigs[c.step]) for c in cands}
    names = {c: pb.candidate_names(c, v) for c in cands}
    money = {c: pb.candidate_money(c, v) for c in cands}
    hits: dict[Reading, int] = {}
    plain: dict[Reading, bool] = {}  # a word that is not a name tells this candidate from the others
    for c in cands:
        # only the words that tell this candidate from the others count
        others = set().union(*(sg for o, sg in sigs.items() if o != c))
        words = about.around & (sigs[c] - others)
        h = len(words)
        plain[c] = bool(words - pb.names)
        if c.step is None:
            h += _EVIDENCE_STRONG * (bool(about.around & _UNIT_CONSTANTS.get(v, frozenset())) + about.is_word)
        # a name the step speaks of that this candidate is about while every other is about someone
        # the step does not speak of ("Alani ... 40+20": Alani's 40, not Braylen's); "$150 + $3" is
        # an amount of money (step 1's $3 interest), not the problem's 3 months
        contrast = all(names[o] and not names[o] & about.names for o in cands if o != c)
        h += _EVIDENCE_STRONG * bool(about.names & names[c] and contrast)
        h += _EVIDENCE_STRONG * (about.money and money[c]
                                 and all(o.step is None and not money[o] for o in cands if o != c))
        hits[c] = h
    best = max(hits.values())
    unique = sum(1 for x in hits.values() if x == best) == 1
    # 2: evidence; 1: one word only (weak: it decides only what rules 1-6 leave tied)
    return {c: (2 if h >= _EVIDENCE_MIN else int(plain[c])) if h == best and h and unique else 0
            for c, h in hits.items()}


def _score(lits: _Literals, sums: list[bool], results: list[Fraction],
           choice: Sequence[Reading]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """How well one combination of readings fits: rules 1-6 of the module's docstring, then the
    fallbacks (the latest calculations, the nearest steps)."""
    n = len(results)
    used = [False] * n
    for readings in lits.fixed:
        for r in readings.values():
            if r.step is not None:
                used[r.step] = True
    per_step: dict[int, list[int]] = {}
    amb_step = late = near = 0
    # a number the step before used as a constant is that constant again (``20*2`` then ``40+20``)
    const_seen = set(lits.constants) | {(s.step, s.value) for s, r in zip(lits.slots, choice, strict=True)
                                        if r.step is None}
    reused = sum(1 for slot, r in zip(lits.slots, choice, strict=True) if r.step is None
                 and (slot.step - 1, slot.value) in const_seen)
    evidenced: set[tuple[int, Fraction, bool]] = set()  # a sentence's words explain one literal
    weak: set[tuple[int, Fraction, bool]] = set()  # ... its one word does
    for slot, r in zip(lits.slots, choice, strict=True):
        if slot.evidence[r]:
            (evidenced if slot.evidence[r] == 2 else weak).add((slot.step, slot.value, r.step is None))
        if r.step is not None:
            used[r.step] = True
            per_step.setdefault(slot.step, []).append(r.step)
            near -= slot.step - r.step
            if slot.ambiguous:
                amb_step += 1
                late += slot.step
    dup = pairs = 0
    for k, js in per_step.items():
        all_js = js + [r.step for r in lits.fixed[k].values() if r.step is not None]
        dup += len(all_js) - len(set(all_js))
        if not sums[k]:
            # x/x, x-x, x*x of two equal results: as degenerate as one result read twice
            values = [results[j] for j in set(all_js)]
            dup += len(values) - len(set(values))
            continue
        # m copies of a value in one sum, m earlier steps with that result: those steps
        for j in set(js):
            same = [i for i in range(k) if results[i] == results[j]]
            if len(same) > 1 and sorted(i for i in js if results[i] == results[j]) == same:
                pairs += 1
    coverage = sum(used[:-1])
    return (coverage, pairs, len(evidenced), reused, -dup, -amb_step), (len(weak), late, near)


def _choose(pb: _Problem, lits: _Literals, uncertain: list[bool]) -> tuple[Reading, ...]:
    """The best combination of the slots' readings; flags (in ``uncertain``) each step whose
    calculation differs between combinations that only the fallbacks told apart."""
    slots = lits.slots
    if not slots:
        return ()
    n_comb = 1
    for s in slots:
        n_comb *= len(s.candidates)
    if n_comb > _MAX_COMBINATIONS:
        # too many to enumerate (never on the bundled split): each literal's first candidate (the
        # latest step), and every step with a choice flagged
        for s in slots:
            uncertain[s.step] = True
        return tuple(s.candidates[0] for s in slots)
    # sums: calculations that only add (where equal results used together are a pair, not x/x)
    sums = [all(isinstance(n.op, ast.Add) for n in ast.walk(st.body) if isinstance(n, ast.BinOp)) for st in pb.steps]
    scored = [(_score(lits, sums, pb.results, c), c) for c in itertools.product(*(s.candidates for s in slots))]
    top = max(sc for sc, _c in scored)
    best = next(c for sc, c in scored if sc == top)
    tied = [c for sc, c in scored if sc[0] == top[0]]
    if len(tied) > 1:
        for k in {s.step for s in slots}:
            idx = [i for i, s in enumerate(slots) if s.step == k]
            forms = {_canonical(pb.steps[k], {slots[i].offset: c[i] for i in idx}, lits.fixed[k]) for c in tied}
            if len(forms) > 1:
                uncertain[k] = True
    return best


def _not_answer(pb: _Problem, constants: list[tuple[int, Fraction]]) -> set[int]:
    """Steps whose annotation is not their sub-question's answer: a constant nothing explains (not
    in the problem, not a unit) that an earlier step's calculation holds while that step's result
    is already known (a result of an earlier step, or a number of the problem): that step checks
    the number it states by an inverse calculation ("He sold 11 lego sets because 11 x 15 = 165")."""
    out: set[int] = set()
    for k, v in constants:
        if v in pb.qnums or v in _UNIT_CONSTANTS or v <= 1:
            continue
        for j in range(k - 1, -1, -1):
            step = pb.steps[j]
            in_calc = any(_literal_value(node, step.source) == v for node in _literals(step.body))
            known = pb.results[j] in pb.qnums or pb.results[j] in pb.results[:j]
            if in_calc and known and pb.results[j] != v:
                out.add(j)
                break
    return out


def read_parents(question: str, steps: Sequence[StepSource]) -> ParentsResult:
    """Every literal of every step read as a constant or an earlier step's result."""
    pb = _Problem.of(question, steps)
    lits = _collect_literals(pb)
    # a bare annotation (no calculation) of a number that is neither the problem's nor an earlier
    # result hides its calculation
    uncertain = [s.bare and s.result not in pb.qnums and s.result not in pb.results[:k] for k, s in enumerate(steps)]
    choice = _choose(pb, lits, uncertain)
    variables = [dict(f) for f in lits.fixed]
    for slot, r in zip(lits.slots, choice, strict=True):
        variables[slot.step][slot.offset] = r
    chosen = list(zip(lits.slots, choice, strict=True))
    amb_step = sum(1 for s, r in chosen if s.ambiguous and r.step is not None)
    amb_const = sum(1 for s, r in chosen if s.ambiguous and r.step is None)
    constants = lits.constants + [(s.step, s.value) for s, r in chosen if r.step is None]
    not_answer = _not_answer(pb, constants)
    return ParentsResult(tuple(variables), tuple(uncertain), amb_step, amb_const, tuple(sorted(not_answer)))


def fold_arithmetic(node: ast.expr, leaf: Callable[[ast.Constant], Fraction], *,
                    zero_division: Fraction | None = None) -> Fraction:
    """The exact value of a checked arithmetic tree (:func:`_parse_expression`), each number's
    value given by ``leaf``; a division or modulo by zero raises ``ZeroDivisionError`` unless
    ``zero_division`` gives its value instead."""
    if isinstance(node, ast.Constant):
        return leaf(node)
    if isinstance(node, ast.UnaryOp):
        v = fold_arithmetic(node.operand, leaf, zero_division=zero_division)
        return -v if isinstance(node.op, ast.USub) else v
    assert isinstance(node, ast.BinOp)
    a = fold_arithmetic(node.left, leaf, zero_division=zero_division)
    b = fold_arithmetic(node.right, leaf, zero_division=zero_division)
    if isinstance(node.op, ast.Add):
        return a + b
    if isinstance(node.op, ast.Sub):
        return a - b
    if isinstance(node.op, ast.Mult):
        return a * b
    if not b and zero_division is not None:
        return zero_division
    return a / b if isinstance(node.op, ast.Div) else a % b

def _canonical(step: StepSource, chosen: dict[int, Reading], fixed: dict[int, Reading]) -> tuple[object, ...]:
    """The step's calculation with every literal replaced by its reading, as a comparable key:
    the value of the calculation at a generic point (two readings that give the same function
    give the same key; ``90+90`` read as s1+s2 or s2+s1 is one reading)."""
    readings = {**fixed, **chosen}
    # evaluate at generic (prime-ish) values of the earlier steps: equal keys = the same function
    point = [Fraction(1000003 + 7919 * j, 97 + j) for j in range(64)]

    def leaf(node: ast.Constant) -> Fraction:
        r = readings.get(node.col_offset)
        if r is not None and r.step is not None:
            return point[r.step] * r.scale
        return _literal_value(node, step.source)

    parents = tuple(sorted({r.step for r in readings.values() if r.step is not None}))
    return parents, fold_arithmetic(step.body, leaf, zero_division=Fraction(0))
