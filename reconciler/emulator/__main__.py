"""Allow `python -m reconciler.emulator`."""

from reconciler.emulator.command import emulator

emulator()
