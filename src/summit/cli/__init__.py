"""The ``summit`` command: one module per command group."""
