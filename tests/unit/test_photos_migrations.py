"""The app's Alembic history on a real SQLite file: it makes the tables ``photos.schema`` describes,
and 0003 collects the hashtags of the comments written before it (as ``extract_tags`` does)."""

from __future__ import annotations

import importlib
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from summit.migrate import History, alembic_config, upgrade

from photos import schema


def _histories() -> tuple[History, History]:
    platform = History.of(importlib.import_module("summit.security.identity.migrations"))
    return platform, History.of(importlib.import_module("photos.migrations"))


def test_the_history_makes_the_schema_the_app_describes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    for history in _histories():
        upgrade(history.location, url)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = [d for d in compare_metadata(context, schema.metadata) if "identity_" not in repr(d) and "summit_" not in repr(d)]
    finally:
        engine.dispose()
    assert diff == []


def test_0003_collects_the_tags_of_comments_already_written(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    platform, photos = _histories()
    upgrade(platform.location, url)
    upgrade(photos.location, url, "0002")
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO users (id, username, created_at) VALUES (1, 'alice', 0)"))
            for post_id in (10, 11):
                conn.execute(sa.text("INSERT INTO posts (id, author_id, caption, photo_key, content_type, width, height, created_at) "
                                     "VALUES (:id, 1, '', 'p/x.jpg', 'image/jpeg', 1, 1, 0)"), {"id": post_id})
            comments = [(100, 10, "What a #Sunset! #sunset and #Gold_hour"), (101, 10, "no tags"), (102, 11, "#sunset again")]
            for comment_id, post_id, body in comments:
                conn.execute(sa.text("INSERT INTO comments (id, post_id, author_id, body, created_at) VALUES (:id, :post, 1, :body, 0)"),
                             {"id": comment_id, "post": post_id, "body": body})
        upgrade(photos.location, url)
        with engine.connect() as conn:
            rows = set(conn.execute(sa.text("SELECT comment_id, tag, post_id FROM comment_tags")).all())
        assert rows == {(100, "sunset", 10), (100, "gold_hour", 10), (102, "sunset", 11)}
        command.downgrade(alembic_config(photos.location, url), "0002")
        with engine.connect() as conn:
            assert "comment_tags" not in sa.inspect(conn).get_table_names()
    finally:
        engine.dispose()
