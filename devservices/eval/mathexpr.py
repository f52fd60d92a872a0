"""A small, whitelisted expression language for math answers.

User text is never handed to ``eval``, ``sympify`` or ``parse_expr``: it is tokenised and
parsed here by a hand-written Pratt parser into a tiny JSON-friendly tree, which is then
checked (size, depth, exponent magnitudes) before anything evaluates it.

Grammar (``^`` and ``**`` are both power, right-associative; unary minus binds looser than
power, so ``-x^2`` is ``-(x^2)``; juxtaposition is multiplication: ``2x``, ``3(x+1)``,
``x sin(x)``, ``(x+1)(x-1)``)::

    expr    := term (('+' | '-') term)*
    term    := unary (('*' | '/') unary | <juxtaposed> power)*
    unary   := ('-' | '+') unary | power
    power   := atom (('^' | '**') unary)?
    atom    := NUMBER | NAME | FUNC '(' expr ')' | '(' expr ')'

Names are the declared variables, the constants ``pi`` and ``e`` (unless ``e`` is declared
as a variable) and the functions in :data:`FUNCTIONS`.

Tree nodes are lists: ``["num", "2.5"]``, ``["var", "x"]``, ``["const", "pi"]``,
``["neg", a]``, ``["add"|"sub"|"mul"|"div"|"pow", a, b]``, ``["call", "sin", a]``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

MAX_INPUT_CHARS: Final = 4096
MAX_DEPTH: Final = 48
MAX_NODES: Final = 2000
# Depth of the *tree*: a flat chain ``x+x+...+x`` parses shallowly but builds a tree as
# deep as it is long, and every later step (checks, sympy, numeric evaluation) recurses.
MAX_TREE_DEPTH: Final = 200
MAX_NUMBER_CHARS: Final = 60
MAX_SCI_EXPONENT: Final = 300
MAX_CONSTANT_EXPONENT: Final = 1000.0  # |e| of any constant exponent
MAX_CONSTANT_LOG10: Final = 1000.0  # log10 of any constant power's magnitude

FUNCTIONS: Final[frozenset[str]] = frozenset(
    {
        "sin",
        "cos",
        "tan",
        "exp",
        "log",
        "ln",
        "sqrt",
        "abs",
        "asin",
        "acos",
        "atan",
        "sinh",
        "cosh",
        "tanh",
    }
)
CONSTANTS: Final[frozenset[str]] = frozenset({"pi", "e"})

_NAME_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_NUMBER_RE: Final = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")

Node = list[Any]


class MathSyntaxError(ValueError):
    """The text is not an expression of the whitelisted language."""

    def __init__(self, message: str, position: int | None = None) -> None:
        self.position = position  # 0-based offset into the text; shown 1-based
        where = f" at column {position + 1}" if position is not None else ""
        super().__init__(f"{message}{where}")


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "num" | "name" | "op" | "end"
    text: str
    pos: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch.isdigit() or (ch == "." and i + 1 < n and text[i + 1].isdigit()):
            m = _NUMBER_RE.match(text, i)
            assert m is not None
            raw = m.group(0)
            # "2e" or "2ex": the exponent part needs digits, else 'e' is a name.
            if len(raw) > MAX_NUMBER_CHARS:
                raise MathSyntaxError("number too long", i)
            mantissa, _, exp = raw.lower().partition("e")
            if exp and abs(int(exp)) > MAX_SCI_EXPONENT:
                raise MathSyntaxError("number exponent too large", i)
            tokens.append(_Token("num", raw, i))
            i = m.end()
            continue
        if ch.isascii() and ch.isalpha():
            m = _NAME_RE.match(text, i)
            assert m is not None
            tokens.append(_Token("name", m.group(0), i))
            i = m.end()
            continue
        if text.startswith("**", i):
            tokens.append(_Token("op", "^", i))
            i += 2
            continue
        if ch in "+-*/^()":
            tokens.append(_Token("op", ch, i))
            i += 1
            continue
        shown = ch if ch.isprintable() else repr(ch)
        raise MathSyntaxError(f"unexpected character {shown!r}", i)
    tokens.append(_Token("end", "", n))
    return tokens


class _Parser:
    def __init__(self, text: str, variables: frozenset[str]) -> None:
        self.tokens = _tokenize(text)
        self.i = 0
        self.variables = variables
        self.nodes = 0

    # -- helpers -------------------------------------------------------------
    def peek(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def node(self, *parts: Any) -> Node:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise MathSyntaxError("expression too large")
        return list(parts)

    def expect(self, text: str) -> None:
        tok = self.peek()
        if tok.kind != "op" or tok.text != text:
            found = "end of input" if tok.kind == "end" else repr(tok.text)
            raise MathSyntaxError(f"expected {text!r} but found {found}", tok.pos)
        self.i += 1

    @staticmethod
    def check_depth(depth: int, pos: int) -> None:
        if depth > MAX_DEPTH:
            raise MathSyntaxError("expression nested too deeply", pos)

    # -- grammar -------------------------------------------------------------
    def parse(self) -> Node:
        tree = self.expr(0)
        tok = self.peek()
        if tok.kind != "end":
            raise MathSyntaxError(f"unexpected {tok.text!r}", tok.pos)
        return tree

    def expr(self, depth: int) -> Node:
        self.check_depth(depth, self.peek().pos)
        left = self.term(depth + 1)
        while True:
            tok = self.peek()
            if tok.kind == "op" and tok.text in "+-":
                self.take()
                right = self.term(depth + 1)
                left = self.node("add" if tok.text == "+" else "sub", left, right)
            else:
                return left

    def term(self, depth: int) -> Node:
        self.check_depth(depth, self.peek().pos)
        left = self.unary(depth + 1)
        while True:
            tok = self.peek()
            if tok.kind == "op" and tok.text in "*/":
                self.take()
                right = self.unary(depth + 1)
                left = self.node("mul" if tok.text == "*" else "div", left, right)
            elif tok.kind == "name" or (tok.kind == "op" and tok.text == "("):
                # juxtaposition: 2x, 3(x+1), x sin(x), (x+1)(x-1)
                right = self.power(depth + 1)
                left = self.node("mul", left, right)
            elif tok.kind == "num":
                raise MathSyntaxError("missing operator before number", tok.pos)
            else:
                return left

    def unary(self, depth: int) -> Node:
        self.check_depth(depth, self.peek().pos)
        tok = self.peek()
        if tok.kind == "op" and tok.text in "+-":
            self.take()
            operand = self.unary(depth + 1)
            return self.node("neg", operand) if tok.text == "-" else operand
        return self.power(depth + 1)

    def power(self, depth: int) -> Node:
        self.check_depth(depth, self.peek().pos)
        base = self.atom(depth + 1)
        tok = self.peek()
        if tok.kind == "op" and tok.text == "^":
            self.take()
            exponent = self.unary(depth + 1)  # right-associative, allows 2^-x
            return self.node("pow", base, exponent)
        return base

    def atom(self, depth: int) -> Node:
        self.check_depth(depth, self.peek().pos)
        tok = self.take()
        if tok.kind == "num":
            return self.node("num", tok.text)
        if tok.kind == "name":
            name = tok.text
            if name in self.variables:
                return self.node("var", name)
            if name in FUNCTIONS:
                nxt = self.peek()
                if nxt.kind != "op" or nxt.text != "(":
                    raise MathSyntaxError(f"function {name!r} needs parentheses", nxt.pos)
                self.take()
                arg = self.expr(depth + 1)
                self.expect(")")
                return self.node("call", "log" if name == "ln" else name, arg)
            if name in CONSTANTS:
                return self.node("const", name)
            allowed = ", ".join(sorted(self.variables)) or "none"
            raise MathSyntaxError(f"unknown name {name!r} (variables: {allowed})", tok.pos)
        if tok.kind == "op" and tok.text == "(":
            inner = self.expr(depth + 1)
            self.expect(")")
            return inner
        if tok.kind == "end":
            raise MathSyntaxError("unexpected end of input", tok.pos)
        raise MathSyntaxError(f"unexpected {tok.text!r}", tok.pos)


def parse(text: str, variables: Sequence[str] = ()) -> Node:
    """Parse ``text`` into a checked tree, or raise :class:`MathSyntaxError`."""
    if len(text) > MAX_INPUT_CHARS:
        raise MathSyntaxError(f"answer longer than {MAX_INPUT_CHARS} characters")
    declared = frozenset(variables)
    for name in declared:
        if not _NAME_RE.fullmatch(name) or name in FUNCTIONS or name == "pi":
            raise MathSyntaxError(f"invalid variable name {name!r}")
    if not text.strip():
        raise MathSyntaxError("empty answer")
    tree = _Parser(text, declared).parse()
    if tree_depth(tree) > MAX_TREE_DEPTH:
        raise MathSyntaxError(f"expression longer than {MAX_TREE_DEPTH} chained operations")
    _check_magnitudes(tree)
    return tree


def tree_depth(tree: Node) -> int:
    """Depth of a tree, without recursion (the tree may be deeper than the stack)."""
    deepest = 0
    stack: list[tuple[Node, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in node[1:] if isinstance(child, list))
    return deepest


def free_variables(tree: Node) -> set[str]:
    if tree[0] == "var":
        return {tree[1]}
    found: set[str] = set()
    for child in tree[1:]:
        if isinstance(child, list):
            found |= free_variables(child)
    return found


# -- magnitude checks -----------------------------------------------------------------


def _check_magnitudes(tree: Node) -> None:
    """Refuse constant powers that would be astronomically large (``9^9^9^9``).

    Any exponent that is a constant must have ``|value| <= MAX_CONSTANT_EXPONENT`` and a
    power of two constants must stay below ``10**MAX_CONSTANT_LOG10``; powers with a
    variable exponent stay symbolic and are bounded by the evaluation time limit.
    """
    op = tree[0]
    if op in ("num", "var", "const"):
        return
    for child in tree[1:]:
        if isinstance(child, list):
            _check_magnitudes(child)
    if op != "pow":
        return
    base, exponent = tree[1], tree[2]
    if free_variables(exponent):
        return
    exp_value = _constant_value(exponent)
    if exp_value is None or abs(exp_value) > MAX_CONSTANT_EXPONENT:
        raise MathSyntaxError("exponent too large")
    if free_variables(base):
        return
    base_value = _constant_value(base)
    if base_value is None:
        raise MathSyntaxError("number too large")
    if base_value != 0 and abs(exp_value) * math.log10(abs(base_value)) > MAX_CONSTANT_LOG10:
        raise MathSyntaxError("number too large")


def _constant_value(tree: Node) -> float | None:
    """Magnitude-safe float value of a constant subtree (None if not finite/real)."""
    try:
        value = evaluate(tree, {})
    except (ArithmeticError, ValueError):
        return None
    return value if math.isfinite(value) else None


# -- float evaluation ------------------------------------------------------------------

_FLOAT_FUNCS: Final[dict[str, Callable[[float], float]]] = {
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "exp": math.exp,
    "log": math.log,
    "sqrt": math.sqrt,
    "abs": abs,
    "asin": math.asin,
    "acos": math.acos,
    "atan": math.atan,
    "sinh": math.sinh,
    "cosh": math.cosh,
    "tanh": math.tanh,
}


def number_value(text: str) -> float:
    return float(text)


def evaluate(tree: Node, env: dict[str, float]) -> float:
    """Evaluate a tree with real floats.

    Raises ``ValueError`` (outside the domain), ``ZeroDivisionError`` or
    ``OverflowError``; never produces complex numbers. All numbers are floats, so no
    big-integer arithmetic can run away.
    """
    op = tree[0]
    if op == "num":
        return number_value(tree[1])
    if op == "var":
        return env[tree[1]]
    if op == "const":
        return math.pi if tree[1] == "pi" else math.e
    if op == "neg":
        return -evaluate(tree[1], env)
    if op == "call":
        arg = evaluate(tree[2], env)
        result = _FLOAT_FUNCS[tree[1]](arg)
        if isinstance(result, complex):  # pragma: no cover - math never returns complex
            raise ValueError("complex result")
        return float(result)
    a = evaluate(tree[1], env)
    b = evaluate(tree[2], env)
    if op == "add":
        return a + b
    if op == "sub":
        return a - b
    if op == "mul":
        return a * b
    if op == "div":
        return a / b
    if op == "pow":
        return math.pow(a, b)
    raise ValueError(f"unknown node {op!r}")


def _finite(value: float) -> bool:
    return not isinstance(value, complex) and math.isfinite(value)


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-7 * max(1.0, abs(a), abs(b))


FIXED_POINTS: Final[tuple[float, ...]] = (-1.0, 0.0, 1.0, 2.0, 0.5, -0.5, 3.0, 0.1)


@dataclass(frozen=True, slots=True)
class NumericComparison:
    equal: bool  # no mismatch at any valid point
    valid_points: int
    mismatch_at: dict[str, float] | None = None


def compare_numerically(
    a: Node, b: Node, variables: Sequence[str], *, seed: int = 0, random_points: int = 12
) -> NumericComparison:
    """Compare two trees at fixed and pseudo-random points.

    Points where either side is undefined, not finite or not real are skipped; the fixed
    points -1, 0, 1, 2, 0.5, ... are always tried. With several variables the fixed points
    are spread so that variables get distinct values.
    """
    import random

    names = sorted(set(variables))
    rng = random.Random(seed)
    points: list[dict[str, float]] = []
    if not names:
        points.append({})
    else:
        k = len(FIXED_POINTS)
        for i in range(k):
            points.append({n: FIXED_POINTS[(i + j * 3) % k] for j, n in enumerate(names)})
        for _ in range(random_points):
            points.append({n: rng.uniform(-3.0, 3.0) for n in names})
        for _ in range(random_points // 2):
            points.append({n: rng.uniform(0.05, 4.0) for n in names})  # positive domain
    valid = 0
    for env in points:
        try:
            va = evaluate(a, env)
            vb = evaluate(b, env)
        except (ArithmeticError, ValueError):
            continue
        if not (_finite(va) and _finite(vb)):
            continue
        valid += 1
        if not _close(va, vb):
            return NumericComparison(equal=False, valid_points=valid, mismatch_at=env)
    return NumericComparison(equal=True, valid_points=valid)
