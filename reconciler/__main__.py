"""Allow `python -m reconciler`."""

from reconciler.entry import main

main()
