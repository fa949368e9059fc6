"""Real databases for the tests: migrated SQLite files, and fresh PostgreSQL schemas when
WARROOM_TEST_DATABASE_URL names a server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

from sqlalchemy import create_engine, text

from storage.db import Database
from storage.migrate import upgrade

PG_URL = os.environ.get("WARROOM_TEST_DATABASE_URL")


def pg_schema_url(base: str) -> Iterator[str]:
    """A fresh PostgreSQL schema for one test, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def migrate(url: str) -> None:
    """Bring the database at `url` to the latest schema."""
    db = Database(url)
    try:
        upgrade(db.engine)
    finally:
        db.close()
