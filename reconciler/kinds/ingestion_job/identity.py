"""What a batch job reads, whatever its connection is called, and which live jobs read it too.

A job reads objects of one S3 location: its connection's place (the S3 service, however the
endpoint is spelled, and the bucket, docs/places.md), limited to the connection's `prefix`,
chosen by one selector (`uris`, `objects`, `prefixes` or `pattern`). Two
jobs read a common object when their locations agree and a key matches both selectors; a renamed
connection, or a second connection on the same bucket, changes nothing about that.

`OverlapIndex` answers "which live jobs into this table read an object this job reads?" in time
linear in the number of keys asked about: keys and the literal stems of patterns are looked up
in dictionaries, and only jobs whose stems can meet are compared token by token.
"""

from __future__ import annotations

import bisect
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, NamedTuple, TypeVar
from urllib.parse import unquote

from reconciler.endpoints import parse_endpoint
from reconciler.globs import (
    SEPARATOR,
    GlobError,
    Sequence,
    fold_slashes,
    is_literal,
    literal_pattern,
    path_of,
    prefix_pattern,
    restrict,
    sequences,
    stem,
    witness,
)

T = TypeVar("T")


@dataclass(frozen=True)
class Place:
    """Where a connection's objects live: the S3 service, the bucket and the key prefix.

    The service is canonical (reconciler/endpoints.py, docs/places.md): an AWS partition
    (`aws`, `aws-cn`, `aws-us-gov`) for every spelling of an AWS S3 endpoint, since bucket names
    are unique within a partition, else the normalized `host:port` of the S3-compatible store.
    """

    service: str
    bucket: str
    prefix: str = ""

    def to_json(self) -> dict[str, str]:
        """The place as it enters a job's fingerprint."""
        return {"service": self.service, "bucket": self.bucket, "prefix": self.prefix}


def place_of(connection: Mapping[str, Any]) -> Place:
    """The place an S3 connection (a manifest spec or a live connection) reads from.

    A virtual-hosted endpoint (`BUCKET.s3.REGION.amazonaws.com`) names the bucket itself; S3
    reads that one, whatever the connection's `bucket` says.
    """
    endpoint = parse_endpoint(str(connection.get("awsEndpoint") or ""))
    bucket = endpoint.bucket or str(connection.get("bucket") or "")
    return Place(endpoint.service, bucket.lower(), str(connection.get("prefix") or ""))


class Keys(NamedTuple):
    """Keys of one bucket a selector reads: one literal key, or a glob sequence over keys."""

    bucket: str
    stem: str  # the literal text every key starts with (the whole key when `tokens` is None)
    tokens: Sequence | None = None  # None: exactly the key `stem` (kept as text: cheap)

    @property
    def sequence(self) -> Sequence:
        """The keys as a glob sequence, for comparison token by token."""
        return literal_pattern(self.stem) if self.tokens is None else self.tokens

    @classmethod
    def glob(cls, bucket: str, sequence: Sequence) -> Keys:
        """Keys matched by a sequence (a literal sequence becomes a literal key)."""
        if is_literal(sequence):
            return cls(bucket, stem(sequence))
        return cls(bucket, stem(sequence), sequence)


@dataclass(frozen=True)
class Reads:
    """The objects a job reads: per bucket, key sequences (globs over full object keys).

    `place` is None when the job's connection is unknown (deleted since): its keys are then
    compared without a location, and any overlap is uncertain. `problem` says why the selector
    cannot be analysed at all (every job into the table may then overlap).
    """

    connection: str
    place: Place | None
    keys: tuple[Keys, ...] = ()
    problem: str | None = None

    @property
    def service(self) -> str | None:
        """The canonical S3 service (see Place), when the connection is known."""
        return self.place.service if self.place else None

    def covers(self, bucket: str, key: str) -> bool:
        """Whether the job reads the object `key` of `bucket` (a listed object, for example)."""
        key = path_of(key)
        wanted = literal_pattern(key)
        return any(
            keys.bucket == bucket.lower()
            and (
                keys.stem == key
                if keys.tokens is None
                else witness(wanted, keys.tokens) is not None
            )
            for keys in self.keys
        )


def reads_of(spec: Mapping[str, Any], place: Place | None) -> Reads:
    """Resolve a job spec (manifest or live) to the objects it reads.

    Keys are compared as the paths Polaris's pattern matcher sees (`globs.path_of`: doubled
    slashes folded, a trailing slash dropped), so that a key and a pattern that selects it
    meet whatever the key's spelling; two keys that differ only so are then taken to be one
    object (they are two in S3: reporting them is the safe error); prefixes, the connection's
    too, have their doubled slashes folded. Where Polaris's reading of a spelling is not
    documented, every plausible reading is kept (see `_spellings`), the connection's prefix's
    included.
    """
    source = spec.get("source") or {}
    connection = sys.intern(str(source.get("connectionName", "")))
    bucket = place.bucket if place else ""
    keyed: list[Keys] = []
    try:
        for prefix in _spellings(fold_slashes(place.prefix) if place else ""):
            keyed += _keys(source, bucket, prefix)
    except GlobError as error:
        return Reads(connection, place, problem=f"pattern {source['pattern']!r}: {error}")
    except ValueError as error:
        return Reads(connection, place, problem=str(error))
    return Reads(connection, place, tuple(dict.fromkeys(keyed)))


def _keys(source: Mapping[str, Any], bucket: str, prefix: str) -> list[Keys]:
    """The keys a selector reads through a connection's (folded) prefix."""
    keyed: list[Keys] = []
    if source.get("uris"):
        for uri in source["uris"]:
            uri_bucket, key = _split_uri(str(uri))
            for spelling in _spellings(key, uri=True):
                keyed.append(Keys(uri_bucket or bucket, _key_within(path_of(spelling), prefix)))
    elif source.get("objects"):
        for key in source["objects"]:
            for spelling in _spellings(str(key)):
                keyed.append(Keys(bucket, _key_within(path_of(spelling), prefix)))
    elif source.get("prefixes"):
        for key_prefix in source["prefixes"]:
            for spelling in _spellings(str(key_prefix)):
                inside = _prefix_within(fold_slashes(spelling), prefix)
                keyed.append(Keys(bucket, inside, prefix_pattern(inside)))
    elif source.get("pattern"):
        for seq in sequences(str(source["pattern"])):
            keyed += [Keys.glob(bucket, inside) for inside in _within(seq, prefix)]
    else:
        raise ValueError("no uris, objects, prefixes or pattern")
    return keyed


def _spellings(key: str, uri: bool = False) -> list[str]:
    """The keys Polaris may read for one written key (or prefix).

    The references are silent, so every plausible reading counts: the key as written; without
    one leading `/` (Druid's CloudObjectLocation, which Polaris's S3 input builds on, drops
    one); and for a URI, percent-decoded, as `java.net.URI.getPath` returns it. A `./` is kept:
    S3 keys are plain strings, and nothing on the way resolves dot segments.
    """
    found = [key]
    if uri and "%" in key:
        found.append(unquote(key))
    found += [k[1:] for k in found if k.startswith(SEPARATOR) and len(k) > 1]
    return list(dict.fromkeys(found))


def _split_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/key` -> (bucket, key); anything else is read as a key of the connection."""
    if uri.lower().startswith("s3://"):
        bucket, _, key = uri[5:].partition("/")
        return sys.intern(bucket.lower()), key  # one a bucket: a plan holds every live job's
    return "", uri


# The S3 guide (tests/reference/polaris-s3-ingestion-guide.txt) says a connection's prefix
# limits the objects available through it; it does not say
# whether a job's keys are relative to it. Keys are read as full bucket keys (as `uris` are, and
# as the emulator's `s3.select` reads them), limited to the prefix; a selector that could select
# nothing that way is read relative to the prefix instead, so that neither reading hides overlap.


def _key_within(key: str, prefix: str) -> str:
    return key if key.startswith(prefix) else prefix + key


def _prefix_within(key_prefix: str, prefix: str) -> str:
    if key_prefix.startswith(prefix):
        return key_prefix
    return prefix if prefix.startswith(key_prefix) else prefix + key_prefix


def _within(sequence: Sequence, prefix: str) -> list[Sequence]:
    if not prefix:
        return [sequence]
    inside = restrict(sequence, prefix)
    return inside or [(*literal_pattern(prefix), *sequence)]


@dataclass(frozen=True)
class Overlap(Generic[T]):
    """A live job that reads (or may read) an object the asking job reads."""

    item: T
    reads: Reads
    example: str | None  # an object key both read, when one can be named
    uncertain: str | None = None  # why overlap cannot be decided, when it cannot


@dataclass
class _Bucket(Generic[T]):
    """One location's sequences, indexed by literal key and by literal stem."""

    exact: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    stems: dict[str, list[tuple[int, Sequence]]] = field(default_factory=lambda: defaultdict(list))
    lengths: list[int] = field(default_factory=list)
    ordered: list[str] = field(default_factory=list)  # every exact key and stem, sorted

    def add(self, entry: int, keys: Keys) -> None:
        if keys.tokens is None:
            self.exact[keys.stem].append(entry)
        else:
            self.stems[keys.stem].append((entry, keys.tokens))

    def freeze(self) -> None:
        self.lengths = sorted({len(s) for s in self.stems})
        self.ordered = sorted(set(self.exact) | set(self.stems))


class OverlapIndex(Generic[T]):
    """Live jobs by table and location, to find the ones that read what a new job reads."""

    def __init__(self, jobs: Iterable[tuple[T, str, Reads]]) -> None:
        """`jobs`: (item, target table, what it reads)."""
        self.entries: list[tuple[T, Reads]] = []
        self.buckets: dict[tuple[str, str | None, str], _Bucket[T]] = defaultdict(_Bucket)
        self.opaque: dict[str, list[int]] = defaultdict(list)
        self.comparisons = 0  # sequence comparisons made, so tests can see the work is linear
        for item, table, reads in jobs:
            entry = len(self.entries)
            self.entries.append((item, reads))
            if reads.problem:
                self.opaque[table].append(entry)
            for keys in reads.keys:
                # A job whose connection is gone is filed without a location; every query
                # also looks there, comparing keys alone.
                self.buckets[(table, reads.service, keys.bucket if reads.place else "")].add(
                    entry, keys
                )
        for index in self.buckets.values():
            index.freeze()

    def find(self, table: str, reads: Reads) -> list[Overlap[T]]:
        """Live jobs into `table` that read, or may read, an object `reads` covers."""
        found: dict[int, Overlap[T]] = {}
        for entry in self.opaque.get(table, ()):
            item, theirs = self.entries[entry]
            found[entry] = Overlap(
                item, theirs, None, f"its selector cannot be analysed ({theirs.problem})"
            )
        if reads.problem:
            for (where_table, _, _), index in self.buckets.items():
                if where_table != table:
                    continue
                for entry in _all_entries(index):
                    item, theirs = self.entries[entry]
                    found.setdefault(
                        entry,
                        Overlap(
                            item,
                            theirs,
                            None,
                            f"this job's selector cannot be analysed ({reads.problem})",
                        ),
                    )
            return [found[entry] for entry in sorted(found)]
        # A job whose own connection is unknown may read from any place: compare keys alone.
        anywhere = [] if reads.place else [place for place in self.buckets if place[0] == table]
        for keys in reads.keys:
            places = [(table, reads.service, keys.bucket), (table, None, "")]
            for place in places if reads.place is not None else anywhere:
                located = self.buckets.get(place)
                if located is not None:
                    certain = place[1] is not None and reads.place is not None
                    self._search(located, keys, found, certain, reads.connection)
        return [found[entry] for entry in sorted(found)]

    def _search(
        self,
        index: _Bucket[T],
        keys: Keys,
        found: dict[int, Overlap[T]],
        certain: bool,
        asking: str,
    ) -> None:
        def record(entry: int, example: str) -> None:
            item, theirs = self.entries[entry]
            uncertain = None
            if not certain:
                whose = (
                    f"its connection {theirs.connection} no longer exists"
                    if theirs.place is None
                    else f"this job's connection {asking} is not known"
                )
                uncertain = f"{whose}, so where it reads from is unknown (the object keys overlap)"
            found[entry] = Overlap(item, theirs, example, uncertain)

        def compare(entry: int, theirs: Sequence) -> None:
            if entry in found:
                return
            self.comparisons += 1
            example = witness(keys.sequence, theirs)
            if example is not None:
                record(entry, example)

        mine = keys.stem
        literal = keys.tokens is None
        if literal:
            for entry in index.exact.get(mine, ()):
                if entry not in found:
                    self.comparisons += 1
                    record(entry, mine)
        # Patterns whose stem is a prefix of mine may match what I match.
        for length in index.lengths:
            if length > len(mine):
                break
            for entry, theirs in index.stems.get(mine[:length], ()):
                compare(entry, theirs)
        if literal:
            return
        # Keys and stems that extend my stem may match my pattern.
        start = bisect.bisect_left(index.ordered, mine)
        for position in range(start, len(index.ordered)):
            text = index.ordered[position]
            if not text.startswith(mine):
                break
            for entry in index.exact.get(text, ()):
                compare(entry, literal_pattern(text))
            if len(text) > len(mine):
                for entry, theirs in index.stems.get(text, ()):
                    compare(entry, theirs)


def _all_entries(index: _Bucket[Any]) -> set[int]:
    entries = {entry for entries in index.exact.values() for entry in entries}
    entries |= {entry for pairs in index.stems.values() for entry, _ in pairs}
    return entries
