"""The platform an application runs on: its ports, opened from a blueprint.

    platform = Platform.from_blueprint(load_blueprint())
    async with platform:             # closes every port on exit
        async with platform.db.write() as conn: ...
"""

from __future__ import annotations

from dataclasses import dataclass

from summit.blueprint import Blueprint
from summit.ports import Cache, Cdn, Database, Mailer, ObjectStore, Queue, SearchIndex
from summit.wiring import open_port

PORTS = ("sql", "objects", "cache", "queue", "mail", "cdn", "search")  # in the order of the fields below


@dataclass
class Platform:
    blueprint: Blueprint
    db: Database
    objects: ObjectStore
    cache: Cache
    queue: Queue
    mail: Mailer
    cdn: Cdn
    search: SearchIndex

    @classmethod
    def from_blueprint(cls, blueprint: Blueprint) -> Platform:
        blueprint.data_dir.mkdir(parents=True, exist_ok=True)
        # adapters connect lazily, so building them opens nothing that could leak on an error
        opened = [open_port(port, blueprint.port_url(port)) for port in PORTS]
        return cls(blueprint, *opened)

    async def close(self) -> None:
        for adapter in (self.search, self.cdn, self.mail, self.queue, self.cache, self.objects, self.db):
            await adapter.close()

    async def __aenter__(self) -> Platform:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
