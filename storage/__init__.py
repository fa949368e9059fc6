"""Durable state: SQLModel tables, the engine and units of work, typed queries, migrations."""
