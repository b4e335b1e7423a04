"""Embedded adapters on the local file system: the objects port (``file://``)."""
