"""What a ``summit bench run`` is asked to do, and the error that stops it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# seeding pays for cheap password hashing; the measured stage is restarted with the blueprint's
FAST_ARGON2 = {"SUMMIT_AUTH__ARGON2_TIME_COST": "1", "SUMMIT_AUTH__ARGON2_MEMORY_KIB": "1024"}
# the seeded users' access tokens must outlast the run (a real client would refresh every few minutes)
LONG_TOKENS = {"SUMMIT_AUTH__ACCESS_TOKEN_TTL_SECONDS": "86400"}


class BenchError(RuntimeError):
    """A run that cannot go on; the message says why and what to do."""


@dataclass
class Options:
    url: str | None = None
    data_dir: Path | None = None  # with --url: the stage's data directory, to read confirmation codes
    start: bool = False
    stage: str | None = None
    config: Path | None = None
    duration: float = 10.0  # seconds per rate step
    rates: list[float] | None = None
    out: Path = Path("bench/results")
    raw_seconds: float = 5.0
    photo_bytes: int | None = None
    media_bytes: int = 200_000  # the photo that GET /media/<photo> and nginx serve, about this size
    users: int = 200
    posts: int = 500
    refine: int = 2
    max_steps: int = 12
    max_in_flight: int = 256
    connections: int = 64
    request_timeout: float = 10.0
    probes: int = 6
    skip_raw: bool = False
    raw_only: tuple[str, ...] | None = None  # the raw endpoints to run, by short name (None: all of them)
    keep: bool = False
    nice: int | None = None
    command: str = ""
    extra_notes: list[str] = field(default_factory=list)
