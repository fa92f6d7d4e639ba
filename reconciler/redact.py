"""Hide secret values in text: whole values, their encoded forms and any long piece of them.

A secret reaches output in more forms than its own characters: JSON escapes it (`\\u00c4`, `\\"`,
`\\\\`, once or twice when JSON sits inside JSON), a URL percent-encodes it, Python's repr escapes
it, HTTP Basic auth base64-encodes it, and anything that cuts text may keep only a piece of it.
The Redactor replaces every form, and every run of FRAGMENT or more characters taken from one,
with SENSITIVE. Redact before cutting: `shorten` does both, in that order.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus

from reconciler.model import SENSITIVE  # what a Secret shows, and what redaction leaves

FRAGMENT = 8  # the shortest piece of a secret that is hidden wherever it appears
MINIMUM = 4  # shorter values would mask ordinary words; they are hidden only as whole values
SEED = (
    FRAGMENT // 2
)  # any FRAGMENT-long run holds a SEED-long piece that starts at a multiple of SEED


def _forms(value: str) -> set[str]:
    """The ways `value` can be written in text the reconciler prints or saves."""
    # surrogateescape: an environment value that is not UTF-8 holds lone surrogates.
    raw = value.encode("utf-8", "surrogateescape")
    forms = {value, repr(value)[1:-1], quote(raw, safe=""), quote(raw), quote_plus(raw)}
    for ascii_only in (True, False):
        once = json.dumps(value, ensure_ascii=ascii_only)[1:-1]
        forms |= {once, json.dumps(once, ensure_ascii=ascii_only)[1:-1]}
    return {form for form in forms if len(form) >= MINIMUM}


@dataclass(frozen=True)
class _Ready:
    """The registered secrets as `Redactor.__call__` reads them, longest whole form first."""

    whole: tuple[str, ...]
    seeds: tuple[tuple[str, tuple[tuple[str, int], ...]], ...]
    any_seed: re.Pattern[str] | None
    unseeded: tuple[str, ...]  # whole forms that start with no seed (the API key's Basic form)


class Redactor:
    """Replaces registered secret values in text; thread-safe, cheap when nothing is registered."""

    def __init__(self) -> None:
        self._values: set[str] = set()  # every value added
        self._whole: set[str] = set()  # replaced wherever they appear
        # Every run of FRAGMENT or more characters of a form contains one of that form's pieces
        # of SEED characters starting at a multiple of SEED: search for those, then extend.
        self._seeds: dict[str, set[tuple[str, int]]] = {}
        self._lock = threading.Lock()
        # What __call__ reads, rebuilt after a change rather than copied at every call: a plan's
        # JSON redacts tens of thousands of strings, and copying the seeds for each one was most
        # of the time `reconciler plan --format json` spent after its last answer.
        self._ready: _Ready | None = None

    def add(self, values: Iterable[str]) -> None:
        """Hide these values, in every form and every long piece, from now on."""
        with self._lock:
            fresh = [
                value
                for value in values
                if isinstance(value, str) and len(value) >= MINIMUM and value not in self._values
            ]
            if not fresh:  # the client registers each secret it sends, at every request
                return
            self._values.update(fresh)
            for value in fresh:
                for form in _forms(value):
                    self._whole.add(form)
                    for at in range(0, len(form) - SEED + 1, SEED):
                        self._seeds.setdefault(form[at : at + SEED], set()).add((form, at))
            self._ready = None

    def clear(self) -> None:
        """Forget every value (a new run starts with only what it registers itself)."""
        with self._lock:
            self._values.clear()
            self._whole.clear()
            self._seeds.clear()
            self._ready = None

    def add_api_key(self, key: str) -> None:
        """Hide an API key, also as the HTTP Basic credential that carries it."""
        self.add([key])
        with self._lock:
            self._whole.add(base64.b64encode(f"{key}:".encode("utf-8", "surrogateescape")).decode())
            self._ready = None

    def __bool__(self) -> bool:
        return bool(self._whole)

    def __call__(self, text: str) -> str:
        """`text` with every secret form, and every piece of one, replaced by SENSITIVE."""
        ready = self._ready or self._prepare()
        seeded = ready.any_seed is not None and ready.any_seed.search(text) is not None
        # Every whole form `add` makes starts with a seed: without one, only the forms that start
        # with none can be in the text. Most text returns here, after one scan in C.
        if not seeded:
            for value in ready.unseeded:
                if value in text:
                    break
            else:
                return text
        replaced = False
        for value in ready.whole:
            if value in text:
                text = text.replace(value, SENSITIVE)
                replaced = True
        if replaced:  # the pieces are looked for in what the whole forms left
            seeded = ready.any_seed is not None and ready.any_seed.search(text) is not None
        if not seeded:
            return text  # no piece of any secret
        spans = [span for seed, places in ready.seeds for span in _runs(text, seed, places)]
        if not spans:
            return text
        spans.sort()
        out: list[str] = []
        last, (run_start, run_end) = 0, spans[0]
        for start, end in spans[1:]:
            if start <= run_end:
                run_end = max(run_end, end)
                continue
            out += [text[last:run_start], SENSITIVE]
            last, run_start, run_end = run_end, start, end
        out += [text[last:run_start], SENSITIVE, text[run_end:]]
        return "".join(out)

    def _prepare(self) -> _Ready:
        with self._lock:
            seeds = tuple((seed, tuple(places)) for seed, places in self._seeds.items())
            # Any seed anywhere in a text, found by one scan; `_runs` then finds every one.
            pattern = "|".join(re.escape(seed) for seed, _ in seeds)
            ready = _Ready(
                whole=tuple(sorted(self._whole, key=len, reverse=True)),
                seeds=seeds,
                any_seed=re.compile(pattern) if seeds else None,
                unseeded=tuple(form for form in self._whole if form[:SEED] not in self._seeds),
            )
            self._ready = ready
        return ready

    def data(self, value: Any) -> Any:
        """A copy of JSON-like data with every string (keys too) redacted."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {self(str(k)): self.data(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.data(v) for v in value]
        return value


def _runs(text: str, seed: str, places: tuple[tuple[str, int], ...]) -> Iterable[tuple[int, int]]:
    """Spans of `text` around each occurrence of `seed` that match FRAGMENT+ characters of a form."""
    found = text.find(seed)
    while found != -1:
        for form, at in places:
            left = 0
            while left < min(found, at) and text[found - left - 1] == form[at - left - 1]:
                left += 1
            right = SEED
            while (
                found + right < len(text)
                and at + right < len(form)
                and text[found + right] == form[at + right]
            ):
                right += 1
            if left + right >= FRAGMENT:
                yield found - left, found + right
        found = text.find(seed, found + 1)


def shorten(text: str, limit: int, redact: Callable[[str], str] | None = None) -> str:
    """Redact first, then cut to `limit` characters: a cut can never leave a piece of a secret."""
    if redact is not None:
        text = redact(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."
