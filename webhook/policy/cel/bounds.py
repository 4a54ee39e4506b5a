"""How long and how deeply nested a CEL expression may be, checked before any parser sees it.

The figures are the Kubernetes API server's: it parses ValidatingAdmissionPolicy and CRD
rules with cel-go's parser defaults (``k8s.io/apiserver/pkg/cel/environment/base.go`` sets
neither limit), which are ``expressionSizeCodePointLimit = 100_000`` and
``maxRecursionDepth = 250`` (``google/cel-go`` ``parser/parser.go``). Like cel-go, a chain
of ``||`` or ``&&`` counts as a balanced tree (400 terms nest 9 deep, not 400), and a run
of ``!`` or unary ``-`` counts once.

Both parsers we hand text to can be driven past their means by nesting: cel-python's Lark
tree and our own walks recurse in Python (``RecursionError``), and the Rust binding's
compiler overflows its stack on a long left-nested chain (``1 + 1 + ...`` of 33,000 terms
kills the process). So the check here reads the text once, token by token, with an
explicit stack and no recursion, and gives an upper bound of the depth of the syntax tree
(:mod:`webhook.policy.cel.syntax`) that the parse would build. Every recursive walk of a
tree that passed is then bounded by :data:`MAX_NESTING`.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_CODE_POINTS = 100_000  # cel-go parser.ExpressionSizeCodePointLimit default
MAX_NESTING = 250  # cel-go parser.MaxRecursionDepth default

_OPEN = "([{"
_CLOSE = ")]}"
_IDENT_START = frozenset("_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_IDENT_PART = _IDENT_START | frozenset("0123456789")
_DIGITS = frozenset("0123456789")
_NUMBER_PART = _DIGITS | frozenset("xXabcdefABCDEFuU")
_STRING_PREFIX = frozenset("rRbB")
# Two-character operators first, so `<=` is one operator and not `<` then `=`.
_BINARY_2 = ("==", "!=", "<=", ">=")
_BINARY_1 = frozenset("<>+*/%")


class CelLimitError(ValueError):
    """The expression is over one of the bounds; the message says which and the limit."""


def _ceil_log2(count: int) -> int:
    """Levels of a balanced binary tree over ``count`` leaves."""
    return (count - 1).bit_length() if count > 1 else 0


@dataclass
class _Frame:
    """One bracket group being read; depths are in tree nodes, a leaf is 1."""

    term_ops: int = 0  # operators of the current and-term (+, ==, ., [ ], calls, unary runs)
    term_child: int = 0  # the deepest bracket group inside the current and-term
    and_count: int = 0
    and_max: int = 0
    or_count: int = 0
    or_max: int = 0
    ternary_count: int = 0
    ternary_max: int = 0
    group_max: int = 0  # the deepest element (between commas) so far
    unary_run: str = ""  # the operator of the run of unary operators being read

    def close_term(self) -> None:
        self.and_max = max(self.and_max, self.term_ops + max(self.term_child, 1))
        self.term_ops = self.term_child = 0
        self.unary_run = ""

    def close_and(self) -> None:
        self.close_term()
        self.or_max = max(self.or_max, self.and_max + _ceil_log2(self.and_count + 1))
        self.and_max = self.and_count = 0

    def close_or(self) -> None:
        self.close_and()
        self.ternary_max = max(self.ternary_max, self.or_max + _ceil_log2(self.or_count + 1))
        self.or_max = self.or_count = 0

    def close_element(self) -> int:
        self.close_or()
        self.group_max = max(self.group_max, self.ternary_max + self.ternary_count)
        self.ternary_max = self.ternary_count = 0
        return self.group_max


def check_expression_bounds(source: str) -> None:
    """Raise CelLimitError when ``source`` is longer or nests deeper than the API server's
    CEL parser allows; linear in the length, whatever the text."""
    if len(source) > MAX_CODE_POINTS:
        raise CelLimitError(
            f"expression is too long: {len(source):,} characters, over the limit of "
            f"{MAX_CODE_POINTS:,} (the Kubernetes API server's CEL limit)"
        )
    depth = nesting_bound(source)
    if depth > MAX_NESTING:
        raise CelLimitError(
            f"expression is nested too deep: more than {MAX_NESTING} levels (the "
            "Kubernetes API server's CEL limit; a long chain of + or . nests too)"
        )


def nesting_bound(source: str, stop_above: int = MAX_NESTING) -> int:
    """An upper bound of the depth of ``source``'s syntax tree (a leaf is 1).

    Stops early, returning ``stop_above + 1``, once the brackets alone nest deeper than
    ``stop_above``. Text that is not CEL gets some bound; the parser then says what is wrong.
    """
    stack = [_Frame()]
    operand = False  # whether the last token ends an operand (so `-` is binary, `(` a call)
    i, n = 0, len(source)
    while i < n:
        c = source[i]
        frame = stack[-1]
        if c in " \t\r\n\f":
            i += 1
            continue
        if c == "/" and source.startswith("//", i):
            end = source.find("\n", i)
            i = n if end < 0 else end + 1
            continue
        start = _string_start(source, i)
        if start is not None:
            i = _skip_string(source, i, start)
            frame.unary_run, operand = "", True
            continue
        if c in _IDENT_START:
            j = i + 1
            while j < n and source[j] in _IDENT_PART:
                j += 1
            if source[i:j] == "in":
                frame.term_ops += 1
                frame.unary_run, operand = "", False
            else:
                frame.unary_run, operand = "", True
            i = j
            continue
        if c == "`":  # an escaped identifier: a.`b-c`
            end = source.find("`", i + 1)
            i = n if end < 0 else end + 1
            frame.unary_run, operand = "", True
            continue
        if c in _DIGITS or (c == "." and not operand and i + 1 < n and source[i + 1] in _DIGITS):
            i = _skip_number(source, i)
            frame.unary_run, operand = "", True
            continue
        two = source[i : i + 2]
        if two == "||":
            frame.close_and()
            frame.or_count += 1
            operand, i = False, i + 2
            continue
        if two == "&&":
            frame.close_term()
            frame.and_count += 1
            operand, i = False, i + 2
            continue
        if two in _BINARY_2:
            frame.term_ops += 1
            frame.unary_run, operand, i = "", False, i + 2
            continue
        if c in _OPEN:
            if operand:  # f(x), a[i], T{...}: a call, an index, a message
                frame.term_ops += 1
            stack.append(_Frame())
            if len(stack) - 1 > stop_above:
                return stop_above + 1
            operand, i = False, i + 1
            continue
        if c in _CLOSE:
            if len(stack) > 1:
                child = stack.pop().close_element() + 1
                parent = stack[-1]
                parent.term_child = max(parent.term_child, child)
                parent.unary_run = ""
            operand, i = True, i + 1
            continue
        if c == ",":
            frame.close_element()
        elif c == "?":
            frame.close_or()
            frame.ternary_count += 1
        elif c == ":":
            frame.close_or()
        elif c in "!-" and not operand:
            if frame.unary_run != c:  # `!!!!` is one level (as in cel-go), `!-!-` four
                frame.term_ops += 1
                frame.unary_run = c
            i += 1
            continue
        elif c in _BINARY_1 or c in "-.=!":
            frame.term_ops += 1
        frame.unary_run, operand = "", False
        i += 1
    while len(stack) > 1:  # unclosed brackets: the parser reports them
        child = stack.pop().close_element() + 1
        stack[-1].term_child = max(stack[-1].term_child, child)
    return stack[0].close_element()


def _string_start(source: str, i: int) -> int | None:
    """Where the quote of a string literal starting at ``i`` is (after r/b prefixes)."""
    j = i
    while j < len(source) and j - i < 2 and source[j] in _STRING_PREFIX:
        j += 1
    if j < len(source) and source[j] in "'\"":
        return j
    return None


def _skip_string(source: str, i: int, quote_at: int) -> int:
    """The index after the string literal starting at ``i`` (its end, or the text's)."""
    raw = "r" in source[i:quote_at].lower()
    quote = source[quote_at]
    triple = source.startswith(quote * 3, quote_at)
    delimiter = quote * 3 if triple else quote
    j = quote_at + len(delimiter)
    n = len(source)
    while j < n:
        if not raw and source[j] == "\\":
            j += 2
            continue
        if source.startswith(delimiter, j):
            return j + len(delimiter)
        if not triple and source[j] == "\n":
            return j  # an unterminated one-line string: the parser says so
        j += 1
    return n


def _skip_number(source: str, i: int) -> int:
    n = len(source)
    j = i
    while j < n and source[j] in _NUMBER_PART:
        j += 1
    if j < n and source[j] == "." and j + 1 < n and source[j + 1] in _DIGITS:
        j += 1
        while j < n and source[j] in _DIGITS:
            j += 1
    if j < n and source[j] in "eE":
        k = j + 1
        if k < n and source[k] in "+-":
            k += 1
        if k < n and source[k] in _DIGITS:
            j = k
            while j < n and source[j] in _DIGITS:
                j += 1
    return j
