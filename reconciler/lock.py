"""The project lock: at most one apply writes to a Polaris project at a time.

Polaris has no lock API and no idempotency keys, so two applies that plan at the same moment
would both submit the same jobs. The lock is built on the one atomic primitive Polaris documents:
compare-and-swap on a table. `PUT /tables/{name}` carries the `version` it was read at, and
Polaris refuses it with 409 when the table changed since ("Table has been updated to a newer
version than the version in the request", and `TableVersion`: "If the version number in the
request is not the current version, Polaris raises an error", in
tests/reference/polaris-openapi.json); `POST /tables` of a name that exists is a 409 too ("Table
already exists"). The lock is an empty table with a reserved name
(LOCK_TABLE) whose `description` (at most 1,000 characters) says who holds it. Taking, renewing
and releasing it are each one conditional write, so two contenders can never both win.

Expiry does not trust clocks on different machines: a holder renews the lock (a new version)
every `ttl / 4` seconds, and a waiter takes the lock over only after it has itself watched the
version stay unchanged for `ttl` seconds (the rule of Kubernetes leases and of the DynamoDB lock
client). The lease (`ttl`) is written in the description too, and a waiter waits for the longer
of its own and the holder's. The expiry time written there is for people.

Fencing, as far as Polaris allows: a holder starts a write (`check`, asked before each change and
again right before each job POST) only while its last confirmed renewal is younger than half the
lease by its own monotonic clock, counted from when that renewal was sent; older, it renews first
or does not write. A holder that cannot renew for most of `ttl` counts its lock as lost. What no
check can stop, since Polaris offers no fenced writes, is a write already past its check when the
process is paused for longer than the lease: apply finds and cancels such a late job POST
(IngestionJob's `Submissions`), and `contested` tells it when it must look (docs/locking.md).

The table is never shown: the client leaves it out of table lists, so plan, drift and prune do
not see it, and a manifest that names it is refused.
"""

from __future__ import annotations

import json
import logging
import random
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

from reconciler.client import (
    AmbiguousWriteError,
    ConflictError,
    NotFoundError,
    PolarisClient,
    PolarisError,
)
from reconciler.errors import ErrorCode, ReconcilerError
from reconciler.model import DEFAULT_LOCK_TIMEOUT, LOCK_TABLE

log = logging.getLogger("reconciler.lock")

LOCK_TTL = 60.0  # seconds without a renewal after which a waiter may take the lock over
POLL_SECONDS = 1.0  # a waiter's mean interval between reads (jittered)
MARKER = "polaris-reconciler lock"
FIELD_LIMIT = 200  # characters of a holder field kept: the description holds at most 1,000

Progress = Callable[[str], None]


class LockError(ReconcilerError):
    """The lock could not be taken or released; the message says why and what to do."""

    code = ErrorCode.LOCKED


class LockRequestError(LockError):
    """The lock could not be read or taken because Polaris refused or could not be reached: an
    API failure (a wrong key, a wrong URL), not another apply holding the lock."""

    code = ErrorCode.API


@dataclass(frozen=True)
class Holder:
    """Who takes the lock; cli.py fills it from the host, the user and the CI environment."""

    who: str  # user@host
    pid: int
    ci: str | None = None  # the CI run's URL, when known


@dataclass(frozen=True)
class LockState:
    """The lock as read from Polaris."""

    version: int
    free: bool
    token: str | None = None
    who: str | None = None
    pid: int | None = None
    ci: str | None = None
    since: str | None = None
    expires: str | None = None
    lease: float | None = None  # the holder's ttl, when it wrote one

    def describe(self) -> str:
        """`alice@ci-7 (pid 42, run https://..., since ..., expires ...)`, for messages."""
        facts = [f"pid {self.pid}"] if self.pid else []
        facts += [f"CI run {self.ci}"] if self.ci else []
        facts += [f"since {self.since}"] if self.since else []
        facts += [f"expires {self.expires} unless renewed"] if self.expires else []
        return f"{self.who or 'an unknown holder'}" + (f" ({', '.join(facts)})" if facts else "")


def read_lock(client: PolarisClient) -> LockState | None:
    """The lock's state, or None when the project has never been locked."""
    table = client.get_table(LOCK_TABLE)
    return None if table is None else _state(table)


def _state(table: Mapping[str, Any]) -> LockState:
    version = int(table.get("version") or 0)
    try:
        record = json.loads(str(table.get("description") or ""))
    except ValueError:
        record = None
    if not isinstance(record, dict) or record.get("lock") != MARKER:
        # Not written by the reconciler: held by someone unknown, never silently free.
        return LockState(version, free=False, who="an unknown holder (unreadable description)")
    if record.get("free"):
        return LockState(version, free=True)
    pid = record.get("pid")
    lease = record.get("lease")
    return LockState(
        version,
        free=False,
        token=str(record.get("token")),
        who=str(record.get("who")),
        pid=pid if isinstance(pid, int) else None,
        ci=str(record["ci"]) if record.get("ci") else None,
        since=str(record.get("since") or "") or None,
        expires=str(record.get("expires") or "") or None,
        lease=float(lease)
        if isinstance(lease, int | float) and not isinstance(lease, bool) and 0 < lease < 1e6
        else None,
    )


def _body(version: int | None, description: str) -> dict[str, Any]:
    # Only what a table needs: an empty detail table whose description is the lock record.
    body: dict[str, Any] = {
        "name": LOCK_TABLE,
        "type": "detail",
        "schemaMode": "flexible",
        "description": description,
    }
    if version is not None:
        body["version"] = version
    return body


def _free_record(now: datetime) -> str:
    return json.dumps({"lock": MARKER, "free": True, "released": _iso(now)})


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class ProjectLock:
    """One apply's hold on its project; use as a context manager around planning and applying."""

    def __init__(
        self,
        client: PolarisClient,
        holder: Holder,
        *,
        timeout: float = DEFAULT_LOCK_TIMEOUT,
        ttl: float = LOCK_TTL,
        progress: Progress = lambda message: None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.client = client
        self.holder = holder
        self.timeout = timeout
        self.ttl = ttl
        self.progress = progress
        self.sleep = sleep
        self.clock = clock
        self.now = now
        self.token = secrets.token_hex(8)
        self.since = now()
        self.version: int | None = None  # the version our last write produced, while held
        self._lost: str | None = None
        self._last_renewal = 0.0  # when the last write of ours that landed was sent
        self.took_over: str | None = None  # whose expired lock this one replaced, if any
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self._guard = threading.Lock()

    def __enter__(self) -> ProjectLock:
        self.acquire()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()

    @property
    def lost(self) -> str | None:
        """Why the lock is no longer ours, or None while it is held."""
        if self._lost is None and self.version is not None:
            # Judged on every call, not only when a renewal returns: one renewal may spend the
            # client's whole retry budget, longer than a waiter waits before taking over.
            silent = self.clock() - self._last_renewal
            if silent > self.ttl * 3 / 4:  # stop before a waiter may take it over
                self._lost = f"the project lock could not be renewed for {silent:.0f} s"
        return self._lost

    @property
    def contested(self) -> bool:
        """Whether another holder may still write beside this one: this lock replaced one that
        had expired, whose holder may only be paused and may resume with a write in flight."""
        return self.took_over is not None

    def check(self) -> str | None:
        """Why no write may start now, or None: a write starts only while the last confirmed
        renewal is younger than half the lease; an older one is renewed first."""
        if self.version is None:
            return self.lost or "the project lock is not held"
        if self.lost is None and self.clock() - self._last_renewal >= self.ttl / 2:
            self.renew()
        if self.lost is not None:
            return self.lost
        age = self.clock() - self._last_renewal
        if age >= self.ttl / 2:
            return (
                f"the project lock's last confirmed renewal is {age:.0f} s old, not younger "
                f"than half its {self.ttl:g} s lease; no write starts until it is renewed"
            )
        return None

    def _record(self) -> str:
        expires = self.now() + timedelta(seconds=self.ttl)
        record = {
            "lock": MARKER,
            "token": self.token,
            "who": self.holder.who[:FIELD_LIMIT],
            "pid": self.holder.pid,
            "ci": (self.holder.ci or "")[:FIELD_LIMIT] or None,
            "since": _iso(self.since),
            "expires": _iso(expires),
            "lease": self.ttl,
        }
        return json.dumps(record, separators=(",", ":"))

    # Taking the lock ---------------------------------------------------------------------------

    def acquire(self) -> None:
        """Take the lock, waiting up to `timeout` seconds; raise LockError naming the holder."""
        deadline = self.clock() + self.timeout
        watched: tuple[int, float] | None = None  # (version, when this process first saw it)
        announced = False
        while True:
            try:
                current = read_lock(self.client)
                sent = self.clock()  # our write, if it lands, lands after this
                if self._take(current, watched):
                    break
            except PolarisError as error:
                failed = LockRequestError(self._explain(error))
                failed.status = error.status  # a 401 or 403 is reported as such
                raise failed from None
            if current is None:
                continue  # created by someone else just now: read it
            if watched is None or watched[0] != current.version:
                watched = (current.version, self.clock())
            remaining = deadline - self.clock()
            if remaining <= 0:
                raise LockError(
                    f"project is locked by {current.describe()}; waited {self.timeout:g} s "
                    "(--lock-timeout). If that apply is no longer running, the lock expires "
                    f"{self.ttl:g} s after its last renewal, or remove it with `reconciler unlock`"
                )
            if not announced:
                self.progress(f"Waiting for the project lock held by {current.describe()} ...")
                announced = True
            self.sleep(min(remaining, random.uniform(0.5, 1.5) * POLL_SECONDS))
        self._last_renewal = sent
        self._renewer = threading.Thread(target=self._renew_loop, name="lock-renewal", daemon=True)
        self._renewer.start()
        log.debug("took the project lock (version %s)", self.version)

    def _take(self, current: LockState | None, watched: tuple[int, float] | None) -> bool:
        """One attempt: create the lock, or swap a free or expired one for ours."""
        if current is None:
            try:
                created = self.client.create_table(_body(None, self._record()))
            except ConflictError:
                return False
            except AmbiguousWriteError:
                return self._confirm(None)
            self.version = int(created.get("version") or 0)
            return True
        # The holder fences on its own lease: wait for the longer of the two.
        lease = max(self.ttl, current.lease or 0.0)
        expired = (
            watched is not None
            and watched[0] == current.version
            and self.clock() - watched[1] >= lease
        )
        if not (current.free or current.token == self.token or expired):
            return False
        if expired:
            self.progress(
                f"Taking over the project lock of {current.describe()}: not renewed for {lease:g} s"
            )
        taken = self._swap(current.version)
        if taken and expired:
            self.took_over = current.describe()
        return taken

    def _swap(self, version: int) -> bool:
        """Compare-and-swap our record in at `version`; True when it is ours afterwards."""
        try:
            updated = self.client.update_table(LOCK_TABLE, _body(version, self._record()))
        except ConflictError:
            return False
        except (AmbiguousWriteError, NotFoundError):
            return self._confirm(version)
        self.version = int(updated.get("version") or version + 1)
        return True

    def _confirm(self, version: int | None) -> bool:
        """After a write at `version` whose outcome is unknown: read whether it landed.

        Our token alone is not enough when renewing: the lock held it before the write too.
        The write landed only if the version moved on from the one it was made at.
        """
        current = read_lock(self.client)
        landed = current is not None and current.token == self.token
        if landed and current is not None and (version is None or current.version > version):
            self.version = current.version
            return True
        if landed and current is not None:
            # Still ours but unchanged: the renewal did not land, so the expiry did not move.
            raise PolarisError("the lock is unchanged after a write Polaris answered with an error")
        return False

    def _explain(self, error: PolarisError) -> str:
        if error.status == 403:
            return (
                f"cannot take the project lock: {error}. The lock is the table {LOCK_TABLE} "
                "and needs the ManageTables permission; grant it, or pass --no-lock if you "
                "make sure yourself that no other apply runs at the same time"
            )
        return f"cannot take the project lock: {error}"

    # Keeping it --------------------------------------------------------------------------------

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl / 4):
            self.renew()
            if self._lost:
                return

    def renew(self) -> None:
        """Push the expiry forward; notice when the lock was lost."""
        with self._guard:
            if self._lost or self.version is None:
                return
            try:
                sent = self.clock()
                if not self._swap(self.version):
                    current = read_lock(self.client)
                    if current is None or current.free:
                        self._lost = "the project lock was removed (reconciler unlock?)"
                    else:
                        self._lost = f"the project lock was taken over by {current.describe()}"
                    return
                self._last_renewal = sent
            except PolarisError as error:
                log.warning("could not renew the project lock: %s", error)

    # Giving it back ----------------------------------------------------------------------------

    def release(self) -> None:
        """Give the lock back (after success, failure or Ctrl-C); never raises."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=self.client.config.timeout + 5)
        with self._guard:
            if self.version is None:
                return  # never taken
            try:
                for _attempt in range(3):
                    # Read first: free the lock only while it is ours, whatever happened since.
                    current = read_lock(self.client)
                    if current is None or current.token != self.token:
                        break  # taken over, removed, or freed by an attempt whose answer was lost
                    try:
                        self.client.update_table(
                            LOCK_TABLE, _body(current.version, _free_record(self.now()))
                        )
                        break
                    except (ConflictError, AmbiguousWriteError):
                        continue
            except PolarisError as error:
                self.progress(
                    f"Could not release the project lock ({error}); it expires {self.ttl:g} s "
                    "after its last renewal, or remove it with `reconciler unlock`"
                )
            finally:
                self.version = None


def remove_lock(client: PolarisClient, expected: LockState, now: datetime) -> None:
    """Free the lock if it is still as `expected` (what the user confirmed); else LockError."""
    try:
        client.update_table(LOCK_TABLE, _body(expected.version, _free_record(now)))
    except ConflictError:
        raise LockError(
            "the lock changed while you were asked (renewed or taken by another apply); "
            "nothing was removed. Run `reconciler unlock` again to see its holder now"
        ) from None
    except AmbiguousWriteError:
        current = read_lock(client)
        if current is None or not current.free:
            raise
