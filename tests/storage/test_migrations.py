"""Schema migrations carry existing data forward, on SQLite and PostgreSQL."""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from service.storage.database import WRITE_OPTION, make_engine, upgrade_schema


def test_face_model_names_become_rekognition_version_numbers(database_url: str) -> None:
    engine = make_engine(database_url)
    config = Config()
    config.set_main_option("script_location", str(resources.files("migrations")))
    with engine.execution_options(**{WRITE_OPTION: True}).begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")  # a database written before numeric versions
        for number, name in enumerate(("facenet-20170512", "facenet-vggface2-20180402")):
            connection.execute(
                text(
                    "INSERT INTO collections (collection_id, face_model_version, created_at, "
                    "face_count, user_count, tags) VALUES (:id, :name, 0, 0, 0, '{}')"
                ),
                {"id": f"c{number}", "name": name},
            )
    upgrade_schema(engine)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT collection_id, face_model_version FROM collections ORDER BY pk")
        ).all()
    assert [tuple(row) for row in rows] == [("c0", "1.0"), ("c1", "2.0")]
    engine.dispose()


def test_the_migrations_build_the_schema_the_code_declares(database_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from service.storage.schema import Base

    engine = make_engine(database_url)
    upgrade_schema(engine)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert differences == []
