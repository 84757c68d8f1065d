"""Alembic migrations: the only place the schema changes; the server runs `upgrade head`."""
