"""Java glob patterns, as Polaris's `pattern` object selector reads them, and overlap between them.

Polaris hands `pattern` to Java's `FileSystems.getDefault().getPathMatcher("glob:...")` (the S3
guide, tests/reference/polaris-s3-ingestion-guide.txt, links the Oracle documentation) and, as
Druid's S3 input source does, matches it against `Paths.get(key)`: a key's doubled slashes are
folded and a trailing slash dropped before matching. This module reads a pattern exactly as
Java's `Globs.toRegexPattern` translates it and `java.util.regex` then reads the translation;
docs/globs.md lists the rules, and tests/identity/test_java_glob_corpus.py checks them against tens of
thousands of verdicts of Java itself (tests/reference/java-glob-corpus.jsonl.gz).

The module is pure and imports nothing from the rest of the package but `errors`, so that the emulator (which
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
_SLASHES = re.compile("/{2,}")
MAX_EXPANSIONS = 256  # {a,b}{c,d}... combinations compared; more: overlap is uncertain


class GlobError(ReconcilerError, ValueError):
    """A pattern this tool cannot read: Java refuses it, or it cannot be analysed."""

    code = ErrorCode.SELECTOR


class JavaGlobError(GlobError):
    """A pattern Java refuses (PatternSyntaxException); the message is Java's description."""


class GlobUnsupported(GlobError):
    """A pattern Java may accept but reads through its regular-expression parser in a way this
    tool does not follow (docs/globs.md); refused, so that it never selects unknown objects."""


class GlobTooLarge(GlobError):
    """A valid pattern with too many `{...}` combinations to compare: its overlap is unknown."""


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
# `**` is the regex `.*`, and Java's `.` matches no line terminator.
LINE_TERMINATORS = ((0x0A, 0x0A), (0x0D, 0x0D), (0x85, 0x85), (0x2028, 0x2029))
ANY_IN_LINE = CharSet(LINE_TERMINATORS, negated=True)


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
    """Parse `[...]` from just after the `[`, as Java's Globs.toRegexPattern translates it and
    java.util.regex then reads the translation; return the token and the index after `]`.

    Only `!` negates (`[^a]` is the set of `^` and `a`); a backslash is a literal; a `-` first
    (after any `!`) or last is a literal; `/` is refused unless it ends a range, and a class
    never matches `/` whatever it lists (Java intersects every class with `[^/]`).
    """
    i = start
    negated = False
    ranges: list[tuple[int, int]] = []
    if pattern[i : i + 1] == "^":
        ranges.append((ord("^"), ord("^")))
        i += 1
    else:
        if pattern[i : i + 1] == "!":
            negated = True
            i += 1
        if pattern[i : i + 1] == "-":
            ranges.append((ord("-"), ord("-")))
            i += 1
    last: int | None = None  # a character that may start a range
    while i < len(pattern):
        char = pattern[i]
        i += 1
        if char == "]":
            if not ranges:
                # Java reads `]` right after the class's `[` as a literal: the class it opens
                # is never closed.
                raise JavaGlobError("Unclosed character class")
            if negated:
                chars = CharSet((*ranges, (ord(SEPARATOR), ord(SEPARATOR))), negated=True)
            else:
                chars = CharSet(_without(tuple(ranges), ord(SEPARATOR)))
            return Token(chars), i
        if char == SEPARATOR:
            raise JavaGlobError("Explicit 'name separator' in class")
        _check_bmp(char)
        if char != "-":
            ranges.append((ord(char), ord(char)))
            last = ord(char)
            continue
        if last is None:
            raise JavaGlobError("Invalid range")
        end = pattern[i : i + 1]
        i += 1
        if end in ("", "]"):
            ranges.append((ord("-"), ord("-")))  # a dangling `-` before `]` is a literal
            if end == "]":
                i -= 1
            continue
        if ord(end) < last:
            raise JavaGlobError("Invalid range")
        if end in "\\[":
            # Java copies a range's end into the regular expression unescaped: `[` then
            # opens a class that is never closed, and `\\` starts a regex escape.
            if end == "[":
                raise JavaGlobError("Unclosed character class")
            raise GlobUnsupported(
                "a range that ends in a backslash: Java reads the characters after it as a "
                "regular-expression escape; write the last character of the range itself"
            )
        _check_bmp(end)
        ranges[-1] = (last, ord(end))
        last = None
    raise JavaGlobError("Missing ']")


def _without(ranges: tuple[tuple[int, int], ...], point: int) -> tuple[tuple[int, int], ...]:
    """The ranges less one code point."""
    kept: list[tuple[int, int]] = []
    for low, high in ranges:
        if low <= point <= high:
            kept += [(a, b) for a, b in ((low, point - 1), (point + 1, high)) if a <= b]
        else:
            kept.append((low, high))
    return tuple(kept)


def _check_bmp(char: str) -> None:
    if ord(char) > 0xFFFF:
        # Java compares a class's characters as UTF-16 units, so such a character is two.
        raise GlobUnsupported(
            f"the character {char!r} inside [...]: Java reads it as two UTF-16 units there; "
            "use ? or {...} alternatives instead"
        )


def _parts(pattern: str) -> list[list[Sequence]]:
    """The pattern as a concatenation of parts, each a list of alternatives (one outside groups).

    Follows Java's Globs.toRegexPattern character by character: `\\` makes any next character a
    literal, `*` stays within a segment and `**` crosses them (as the regex `.`, which matches
    no line terminator), `?` is one character other than `/`, `{a,b}` groups cannot nest, and
    `}` or `,` outside a group are literals.
    """
    parts: list[list[Sequence]] = []  # each part: alternatives (one for plain tokens)
    current: list[Token] = []
    group: list[list[Token]] | None = None
    i = 0
    while i < len(pattern):
        char = pattern[i]
        target = group[-1] if group is not None else current
        if char == "\\":
            if i + 1 >= len(pattern):
                raise JavaGlobError("No character to escape")
            target.append(_literal(pattern[i + 1]))
            i += 2
            continue
        if char == "*":
            double = i + 1 < len(pattern) and pattern[i + 1] == "*"
            target.append(Token(ANY_IN_LINE if double else NOT_SEPARATOR, repeat=True))
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
                raise JavaGlobError("Cannot nest groups")
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
        raise JavaGlobError("Missing '}")
    parts.append([tuple(current)])
    return parts


def _parse(pattern: str) -> list[Sequence]:
    """The pattern as group-free token sequences, one per combination of `{...}` alternatives."""
    parts = _parts(pattern)
    count = 1
    for alternatives in parts:
        count *= len(alternatives)
        if count > MAX_EXPANSIONS:
            raise GlobTooLarge(f"the pattern has more than {MAX_EXPANSIONS} {{...}} combinations")
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
    """A regular expression that matches exactly the paths (see `path_of`) the pattern matches.

    Raises JavaGlobError or GlobUnsupported; never GlobTooLarge (groups are not expanded here).
    """
    parts = []
    for alternatives in _parts(pattern):
        pieces = [
            "".join(_charset_regex(token.chars) + ("*" if token.repeat else "") for token in seq)
            for seq in alternatives
        ]
        parts.append("(?:" + "|".join(pieces) + ")")
    return re.compile("".join(parts), re.DOTALL)


def fold_slashes(text: str) -> str:
    """The text with each run of `/` written as one."""
    return _SLASHES.sub(SEPARATOR, text)


def path_of(key: str) -> str:
    """The key as `Paths.get(key).toString()` spells it: doubled slashes folded, a trailing
    slash dropped (the string Java's PathMatcher matches)."""
    path = fold_slashes(key)
    return path[:-1] if len(path) > 1 and path.endswith(SEPARATOR) else path


def matches(pattern: str, key: str) -> bool:
    """Whether Polaris's matcher selects the object `key`: the glob matches the key's path."""
    if "\0" in key:
        return False  # Paths.get refuses it: no pattern selects such a key
    return compile_glob(pattern).fullmatch(path_of(key)) is not None


def prefix_pattern(prefix: str) -> Sequence:
    """Every key that starts with `prefix`, as a token sequence."""
    return (*(_literal(char) for char in prefix), Token(ANY, repeat=True))


def literal_pattern(key: str) -> Sequence:
    """Exactly one key, as a token sequence."""
    return tuple(_literal(char) for char in key)


@functools.lru_cache(maxsize=4096)  # a search asks of the same few pairs of sets again and again
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
