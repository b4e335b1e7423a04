"""``python -m summit``: the ``summit`` command (what the control plane runs for the app process)."""

from summit.cli.main import main

main()
