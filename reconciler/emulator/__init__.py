"""A local, faithful emulator of the Imply Polaris Connections v1, Jobs v1 and Tables v1 APIs.

It imports nothing from the reconciler: it serves the API and does not know who calls it.
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
