"""Engine set-up and schema migration for the embedded SQLite default and PostgreSQL."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


def default_database_url(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / 'facebank.db').resolve()}"


def open_database(database_url: str, data_dir: Path) -> Engine:
    """The deployment's database (`database_url`, or SQLite in `data_dir`), migrated to head."""
    data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(database_url or default_database_url(data_dir))
    upgrade_schema(engine)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the writer; FULL makes every acknowledged commit durable even
    # if the machine loses power; foreign keys are off in SQLite unless asked for.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    # A deferred transaction that reads and then writes can fail at once with SQLITE_BUSY when
    # another writer got in between; writers take the write lock up front instead (and wait).
    write = connection.get_execution_options().get(WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _sqlite_connect(dbapi_connection: Any, record: Any) -> None:
    dbapi_connection.isolation_level = None  # SQLAlchemy's begin hook issues BEGIN itself
    _sqlite_pragmas(dbapi_connection, record)


WRITE_OPTION = "facebank_write"


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


def session_factories(engine: Engine) -> tuple[sessionmaker[Session], sessionmaker[Session]]:
    """(reader, writer): the writer's transactions lock for writing from their start."""
    writer_engine = engine.execution_options(**{WRITE_OPTION: True})
    return (
        sessionmaker(engine, expire_on_commit=False),
        sessionmaker(writer_engine, expire_on_commit=False),
    )


def upgrade_schema(engine: Engine) -> None:
    """`alembic upgrade head` on this engine: the only way the schema is created or changed."""
    config = Config()
    config.set_main_option("script_location", str(resources.files("migrations")))
    with engine.execution_options(**{WRITE_OPTION: True}).begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
