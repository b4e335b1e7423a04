"""Ports: the interfaces the application talks to.

One module per port. Each defines the interface, its errors and its capability flags; the
adapters under ``summit.adapters`` implement them, and ``summit.testing`` holds the contract
suite every adapter of a port passes. The application imports from here, never an adapter.
"""

from summit.ports.cache import Cache, CacheError, CacheUnavailable
from summit.ports.cdn import Cdn, CdnError
from summit.ports.mail import InvalidMessage, MailDeliveryError, MailError, Mailer, MailMessage, Outbox, SentMail
from summit.ports.objects import (
    InvalidKey,
    LocalFile,
    ObjectError,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    ObjectStoreUnavailable,
    ObjectStream,
    StoredObject,
)
from summit.ports.queue import Message, Queue, QueueError, QueueStats, ReceiptInvalid
from summit.ports.search import Document, Hit, InvalidQuery, SearchError, SearchIndex, SearchPage, SearchUnavailable
from summit.ports.sql import (
    CommitUnknown,
    Connection,
    Database,
    DatabaseError,
    DatabaseUnavailable,
    IntegrityError,
    ReadPosition,
    read_position,
    track_writes,
    untrack,
)

__all__ = [
    "Cache",
    "CacheError",
    "CacheUnavailable",
    "Cdn",
    "CdnError",
    "CommitUnknown",
    "Connection",
    "Database",
    "DatabaseError",
    "DatabaseUnavailable",
    "Document",
    "Hit",
    "IntegrityError",
    "InvalidKey",
    "InvalidMessage",
    "InvalidQuery",
    "LocalFile",
    "MailDeliveryError",
    "MailError",
    "MailMessage",
    "Mailer",
    "Message",
    "ObjectError",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "ObjectStoreUnavailable",
    "ObjectStream",
    "Outbox",
    "Queue",
    "QueueError",
    "QueueStats",
    "ReadPosition",
    "ReceiptInvalid",
    "SearchError",
    "SearchIndex",
    "SearchPage",
    "SearchUnavailable",
    "SentMail",
    "StoredObject",
    "read_position",
    "track_writes",
    "untrack",
]
