"""Durable storage: SQLAlchemy models over SQLite (embedded default) or PostgreSQL."""
