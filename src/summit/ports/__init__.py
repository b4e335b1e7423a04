"""Ports: the interfaces the application talks to.

One module per port. Each defines the interface, its errors and its capability flags; the
adapters under ``summit.adapters`` implement them, and ``summit.testing`` holds the contract
suite every adapter of a port passes. The application imports from here, never an adapter.
"""

from summit.ports.cache import Cache, CacheError
from summit.ports.objects import InvalidKey, ObjectError, ObjectInfo, ObjectNotFound, ObjectStore, StoredObject
from summit.ports.queue import Message, Queue, QueueError, QueueStats, ReceiptInvalid
from summit.ports.sql import Database, DatabaseError, IntegrityError

__all__ = [
    "Cache",
    "CacheError",
    "Database",
    "DatabaseError",
    "IntegrityError",
    "InvalidKey",
    "Message",
    "ObjectError",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "Queue",
    "QueueError",
    "QueueStats",
    "ReceiptInvalid",
    "StoredObject",
]
