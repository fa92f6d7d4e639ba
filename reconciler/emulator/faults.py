"""Fault injection, deterministic from a seed: throttling, server errors, latency, lost responses."""

from __future__ import annotations

import math
import random
import threading
from dataclasses import dataclass, field
from typing import Literal

from reconciler.emulator.api import Response

FaultKind = Literal["429", "500", "503", "drop"]
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass
class _Scripted:
    kind: FaultKind
    method: str | None
    path_contains: str | None
    times: int


@dataclass
class Gate:
    """A request held at the door before it is handled (`FaultPlan.hold`): tests use it to make
    a write land at the worst moment, e.g. after another client took a lock over."""

    method: str | None
    path_contains: str | None
    arrived: threading.Event = field(default_factory=threading.Event)
    opened: threading.Event = field(default_factory=threading.Event)
    limit: float = 120.0  # seconds a held request waits at most, so a failed test cannot hang

    def matches(self, method: str, path: str) -> bool:
        """Whether this gate holds a request."""
        return self.method in (None, method) and (
            self.path_contains is None or self.path_contains in path
        )

    def wait_for_arrival(self, timeout: float = 30.0) -> bool:
        """Wait until the request is held; False when none came."""
        return self.arrived.wait(timeout)

    def release(self) -> None:
        """Let the held request be handled."""
        self.opened.set()


@dataclass
class FaultPlan:
    """Which requests fail, and how.

    Random faults are drawn from `random.Random(seed)`, so the same sequence of requests meets
    the same faults. A "drop" applies only to writes: the write is committed, then the response
    is lost, which is the ambiguous failure every client must survive. Scripted faults
    (`inject`) come first and hit exactly the requests they describe.
    """

    seed: int = 0
    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_503: float = 0.0
    rate_drop: float = 0.0
    latency_seconds: float = 0.0
    retry_after_seconds: float = 1.0
    _scripted: list[_Scripted] = field(default_factory=list, repr=False)
    _gates: list[Gate] = field(default_factory=list, repr=False)
    _random: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        rates = (self.rate_429, self.rate_500, self.rate_503, self.rate_drop)
        if not all(math.isfinite(rate) and 0 <= rate <= 1 for rate in rates):
            raise ValueError(f"fault rates are shares of requests, from 0 to 1: {rates}")
        for name in ("latency_seconds", "retry_after_seconds"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number of seconds >= 0, not {value}")

    def inject(
        self,
        kind: FaultKind,
        method: str | None = None,
        path_contains: str | None = None,
        times: int = 1,
    ) -> None:
        """Make the next `times` matching requests fail with `kind`."""
        with self._lock:
            self._scripted.append(_Scripted(kind, method, path_contains, times))

    def hold(self, method: str | None = None, path_contains: str | None = None) -> Gate:
        """Hold the next matching request before it is handled, until the gate is released."""
        gate = Gate(method, path_contains)
        with self._lock:
            self._gates.append(gate)
        return gate

    def wait_at_gate(self, method: str, path: str) -> None:
        """Hold this request if a gate is set for it (each gate holds one request)."""
        with self._lock:
            gate = next((g for g in self._gates if g.matches(method, path)), None)
            if gate is None:
                return
            self._gates.remove(gate)
        gate.arrived.set()
        gate.opened.wait(gate.limit)

    def draw(self, method: str, path: str) -> tuple[FaultKind | None, bool]:
        """The fault for this request, decided before it is handled: (error, drop-after-commit)."""
        with self._lock:
            for scripted in self._scripted:
                if (scripted.method in (None, method)) and (
                    scripted.path_contains is None or scripted.path_contains in path
                ):
                    scripted.times -= 1
                    if scripted.times <= 0:
                        self._scripted.remove(scripted)
                    if scripted.kind == "drop":
                        return None, method in WRITE_METHODS
                    return scripted.kind, False
            roll = self._random.random()
            drop_roll = self._random.random()
        for kind, rate in (("429", self.rate_429), ("500", self.rate_500), ("503", self.rate_503)):
            if roll < rate:
                return kind, False  # type: ignore[return-value]
            roll -= rate
        return None, method in WRITE_METHODS and drop_roll < self.rate_drop


def fault_response(plan: FaultPlan, kind: FaultKind) -> Response:
    """The answer an injected 429, 500 or 503 gets (a drop is not an answer)."""
    if kind == "429":
        headers = {"Retry-After": f"{plan.retry_after_seconds:g}"}
        body = {"code": "TooManyRequests", "message": "Rate limit exceeded; retry later"}
        return Response(429, body, headers)
    status = int(kind)
    code = "ServiceUnavailable" if status == 503 else "InternalServerError"
    return Response(status, {"code": code, "message": "Injected fault"})
