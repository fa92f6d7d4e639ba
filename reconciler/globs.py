"""Java glob patterns, as Polaris's `pattern` object selector reads them, and overlap between them.

Polaris hands `pattern` to Java's `FileSystem.getPathMatcher("glob:...")` (the S3 guide,
tests/reference/polaris-s3-ingestion-guide.txt, links the Oracle documentation): `*` matches
within one path segment, `**` across segments, `?` one character other than `/`, `[abc]`,
`[a-z]` and `[!a]` one character from (or not from) a class, `{a,b}` one of several
sub-patterns (groups do not nest), and `\\` escapes the next character. A class never
matches `/`.

The module is pure and imports nothing from the rest of the package, so that the emulator (which
selects objects) and the planner (which decides whether two jobs may read a common object) share
one reading of a pattern.
"""

from __future__ import annotations

import functools
import itertools
import re
from dataclasses import dataclass

from reconciler.errors import ErrorCode, ReconcilerError

SEPARATOR = "/"
MAX_EXPANSIONS = 256  # {a,b}{c,d}... alternatives analysed before giving up (and refusing)


class GlobError(ReconcilerError, ValueError):
    """A pattern Java would reject, or one too large to analyse."""

    code = ErrorCode.SELECTOR


@dataclass(frozen=True)
class CharSet:
    """One character drawn from a set: the union of `ranges`, or its complement when `negated`."""

    ranges: tuple[tuple[int, int], ...]
    negated: bool = False

    def __contains__(self, char: int) -> bool:
        inside = any(low <= char <= high for low, high in self.ranges)
        return inside != self.negated

    def boundaries(self) -> set[int]:
        """Code points where membership may change: every interval of either set starts at one."""
        points = {0}
        for low, high in self.ranges:
            points.update((low, high + 1))
        return points


NOT_SEPARATOR = CharSet(((ord(SEPARATOR), ord(SEPARATOR)),), negated=True)
ANY = CharSet((), negated=True)


@dataclass(frozen=True)
class Token:
    """One character from `chars`, or (when `repeat`) any number of them."""

    chars: CharSet
    repeat: bool = False


Sequence = tuple[Token, ...]


@functools.lru_cache(maxsize=4096)
def _literal(char: str) -> Token:
    return Token(CharSet(((ord(char), ord(char)),)))


def _parse_class(pattern: str, start: int) -> tuple[Token, int]:
    """Parse `[...]` starting after the `[`; return the token and the index after `]`."""
    i = start
    negated = i < len(pattern) and pattern[i] in "!^"
    if negated:
        i += 1
    ranges: list[tuple[int, int]] = []
    first = True
    while i < len(pattern):
        char = pattern[i]
        if char == "]" and not first:
            # A class never matches the separator, whatever it lists (Java's behaviour).
            chars = CharSet(tuple(ranges), negated)
            if not negated:
                chars = CharSet(tuple(r for r in ranges if not r[0] <= ord(SEPARATOR) <= r[1]))
            else:
                chars = CharSet((*ranges, (ord(SEPARATOR), ord(SEPARATOR))), negated=True)
            return Token(chars), i + 1
        first = False
        if char == "\\":
            i += 1
            if i >= len(pattern):
                break
            char = pattern[i]
        if char == SEPARATOR:
            raise GlobError(f"a [...] class cannot contain {SEPARATOR!r} (Java rejects it)")
        low = ord(char)
        if i + 2 < len(pattern) and pattern[i + 1] == "-" and pattern[i + 2] != "]":
            high = ord(pattern[i + 2])
            if high < low:
                raise GlobError(f"invalid range {char}-{pattern[i + 2]} in a [...] class")
            ranges.append((low, high))
            i += 3
        else:
            ranges.append((low, low))
            i += 1
    raise GlobError("a [ class is not closed with ]")


def _parse(pattern: str) -> list[Sequence]:
    """The pattern as group-free token sequences, one per combination of `{...}` alternatives."""
    parts: list[list[Sequence]] = []  # each part: alternatives (one for plain tokens)
    current: list[Token] = []
    group: list[list[Token]] | None = None
    i = 0
    while i < len(pattern):
        char = pattern[i]
        target = group[-1] if group is not None else current
        if char == "\\":
            if i + 1 >= len(pattern):
                raise GlobError("the pattern ends with an escape (\\) and nothing to escape")
            target.append(_literal(pattern[i + 1]))
            i += 2
            continue
        if char == "*":
            double = i + 1 < len(pattern) and pattern[i + 1] == "*"
            target.append(Token(ANY if double else NOT_SEPARATOR, repeat=True))
            i += 2 if double else 1
            continue
        if char == "?":
            target.append(Token(NOT_SEPARATOR))
        elif char == "[":
            token, i = _parse_class(pattern, i + 1)
            target.append(token)
            continue
        elif char == "{":
            if group is not None:
                raise GlobError("{...} groups cannot be nested (Java rejects it)")
            parts.append([tuple(current)])
            current, group = [], [[]]
        elif char == "}" and group is not None:
            parts.append([tuple(alternative) for alternative in group])
            group = None
        elif char == "," and group is not None:
            group.append([])
        else:
            target.append(_literal(char))
        i += 1
    if group is not None:
        raise GlobError("a { group is not closed with }")
    parts.append([tuple(current)])
    count = 1
    for alternatives in parts:
        count *= len(alternatives)
        if count > MAX_EXPANSIONS:
            raise GlobError(f"the pattern has more than {MAX_EXPANSIONS} {{...}} combinations")
    return [tuple(itertools.chain.from_iterable(combo)) for combo in itertools.product(*parts)]


@functools.lru_cache(maxsize=4096)
def sequences(pattern: str) -> tuple[Sequence, ...]:
    """The pattern's group-free alternatives; raises GlobError for a pattern Java rejects."""
    return tuple(_parse(pattern))


def _charset_regex(chars: CharSet) -> str:
    if chars == ANY:
        return "."
    body = "".join(
        re.escape(chr(low)) if low == high else f"{re.escape(chr(low))}-{re.escape(chr(high))}"
        for low, high in chars.ranges
    )
    if chars.negated:
        return f"[^{body}]" if body else "."
    return f"[{body}]" if body else "(?!)"


@functools.lru_cache(maxsize=4096)
def compile_glob(pattern: str) -> re.Pattern[str]:
    """A regular expression that matches exactly the keys the pattern matches."""
    alternatives = []
    for sequence in sequences(pattern):
        pieces = [_charset_regex(token.chars) + ("*" if token.repeat else "") for token in sequence]
        alternatives.append("".join(pieces))
    return re.compile("(?:" + "|".join(alternatives) + ")", re.DOTALL)


def matches(pattern: str, key: str) -> bool:
    """Whether the glob matches the whole key."""
    return compile_glob(pattern).fullmatch(key) is not None


def prefix_pattern(prefix: str) -> Sequence:
    """Every key that starts with `prefix`, as a token sequence."""
    return (*(_literal(char) for char in prefix), Token(ANY, repeat=True))


def literal_pattern(key: str) -> Sequence:
    """Exactly one key, as a token sequence."""
    return tuple(_literal(char) for char in key)


def _common_char(a: CharSet, b: CharSet) -> int | None:
    """A character in both sets, preferring a readable one (for example keys in messages)."""
    for char in "abcdefghijklmnopqrstuvwxyz0123456789-_.":
        if ord(char) in a and ord(char) in b:
            return ord(char)
    return next(
        (point for point in sorted(a.boundaries() | b.boundaries()) if point in a and point in b),
        None,
    )


def witness(a: Sequence, b: Sequence) -> str | None:
    """A key that matches both sequences, or None when none does.

    A search over positions in both at once: a state (i, j) means "a key so far matched a[:i]
    and b[:j]". It is iterative, so keys of S3's full 1,024 characters cannot exhaust Python's
    recursion limit, and each state remembers how it was reached, so the key can be spelled out.
    """
    parent: dict[tuple[int, int], tuple[tuple[int, int], int | None] | None] = {(0, 0): None}
    todo = [(0, 0)]
    while todo:
        state = todo.pop()
        i, j = state
        if i == len(a) and j == len(b):
            chars: list[str] = []
            step = parent[state]
            while step is not None:
                previous, char = step
                if char is not None:
                    chars.append(chr(char))
                step = parent[previous]
            return "".join(reversed(chars))
        x = a[i] if i < len(a) else None
        y = b[j] if j < len(b) else None
        following: list[tuple[tuple[int, int], int | None]] = []
        if x is not None and x.repeat:  # a repeat may match nothing more
            following.append(((i + 1, j), None))
        if y is not None and y.repeat:
            following.append(((i, j + 1), None))
        if x is not None and y is not None and not (x.repeat and y.repeat):
            char = _common_char(x.chars, y.chars)
            if char is not None:
                # One character taken by both; a repeat stays where it is to take more.
                following.append(((i if x.repeat else i + 1, j if y.repeat else j + 1), char))
        for next_state, char in following:
            if next_state not in parent:
                parent[next_state] = (state, char)
                todo.append(next_state)
    return None


def intersects(a: Sequence, b: Sequence) -> bool:
    """Whether some key matches both sequences."""
    return witness(a, b) is not None


def restrict(sequence: Sequence, prefix: str) -> list[Sequence]:
    """The keys of `sequence` that start with `prefix`, as sequences that begin with it literally.

    Runs the sequence over the prefix as an automaton; each position it can be in afterwards
    gives one sequence: the prefix, then the rest of the tokens from there.
    """
    positions = {0}
    for char in prefix:
        reached: set[int] = set()
        for i in _closure(sequence, positions):
            token = sequence[i] if i < len(sequence) else None
            if token is not None and ord(char) in token.chars:
                reached.add(i if token.repeat else i + 1)
        positions = reached
        if not positions:
            return []
    stem = literal_pattern(prefix)
    return [(*stem, *sequence[i:]) for i in sorted(_closure(sequence, positions))]


def _closure(sequence: Sequence, positions: set[int]) -> set[int]:
    # A repeat may match nothing, so a position before one also stands after it.
    result = set(positions)
    for i in sorted(positions):
        while i < len(sequence) and sequence[i].repeat:
            i += 1
            result.add(i)
    return result


def is_literal(sequence: Sequence) -> bool:
    """Whether the sequence matches exactly one key."""
    return all(_single(token) for token in sequence)


def stem(sequence: Sequence) -> str:
    """The literal text every key of one sequence starts with."""
    chars: list[str] = []
    for token in sequence:
        if not _single(token):
            break
        chars.append(chr(token.chars.ranges[0][0]))
    return "".join(chars)


def _single(token: Token) -> bool:
    ranges = token.chars.ranges
    return (
        not token.repeat
        and not token.chars.negated
        and len(ranges) == 1
        and ranges[0][0] == ranges[0][1]
    )


def patterns_intersect(a: str, b: str) -> bool:
    """Whether two globs can match a common key."""
    return any(intersects(x, y) for x in sequences(a) for y in sequences(b))


def pattern_meets_prefix(pattern: str, prefix: str) -> bool:
    """Whether the glob matches some key that starts with `prefix`."""
    wanted = prefix_pattern(prefix)
    return any(intersects(x, wanted) for x in sequences(pattern))


def literal_prefix(pattern: str) -> str:
    """The longest literal text every key the pattern matches starts with (for indexing)."""
    stems = [stem(sequence) for sequence in sequences(pattern)]
    common = stems[0] if stems else ""
    for other in stems[1:]:
        while not other.startswith(common):
            common = common[:-1]
    return common
