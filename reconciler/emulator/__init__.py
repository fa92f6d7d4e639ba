"""A local, faithful emulator of the Imply Polaris Connections v1, Jobs v1 and Tables v1 APIs.

It imports nothing from the reconciler: it serves the API and does not know who calls it. The
deliberate exceptions are pure modules with no dependency on the plan/apply side:
`reconciler.s3` (listing, reading and selecting objects, so that the emulator and the planner read
a job's objects alike) with what it imports, `reconciler.globs` (Java glob semantics of the
`pattern` selector), `reconciler.endpoints` and `reconciler.errors`; and `reconciler.params`
(click option types its command shares with the reconciler's).

With a data source (`data=DataSource(directory=...)` or `DataSource(endpoint=...)`) jobs read
real objects and the tables hold real rows in DuckDB, queried through `POST .../query/sql`.
"""

from reconciler.emulator.app import (
    ALL_PERMISSIONS,
    DEMO_API_KEY,
    DEMO_PROJECT_ID,
    DroppedResponse,
    Emulator,
    JobTiming,
    Request,
    Response,
)
from reconciler.emulator.clock import ManualClock, SystemClock
from reconciler.emulator.faults import FaultPlan
from reconciler.emulator.server import EmulatorTransport, RunningEmulator

__all__ = [
    "ALL_PERMISSIONS",
    "DEMO_API_KEY",
    "DEMO_PROJECT_ID",
    "DroppedResponse",
    "Emulator",
    "EmulatorTransport",
    "FaultPlan",
    "JobTiming",
    "ManualClock",
    "Request",
    "Response",
    "RunningEmulator",
    "SystemClock",
]
