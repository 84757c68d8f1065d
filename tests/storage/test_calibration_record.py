"""The deployment's calibration record, on both databases: the first replica records its
calibration, the same one is accepted, another is refused, and `facebank calibrate` replaces it
per model version."""

from __future__ import annotations

import pytest

from ml.similarity import Calibration
from service.storage.calibration_record import (
    CalibrationMismatchError,
    record,
    record_or_check,
    recorded_version,
)
from service.storage.database import make_engine, session_factories, upgrade_schema


def calibration(model: str, version: str, at_80: float = 0.4) -> Calibration:
    return Calibration(model, version, (-1.0, at_80, 1.0), (0.0, 80.0, 100.0))


def test_the_first_calibration_is_recorded_and_another_refused(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade_schema(engine)
    reader, writer = session_factories(engine)
    assert recorded_version(reader, "model-a") is None
    record_or_check(writer, calibration("model-a", "a-1"))
    record_or_check(writer, calibration("model-a", "a-1"))  # a restart, or a second replica
    with pytest.raises(CalibrationMismatchError, match="the deployment records a-1"):
        record_or_check(writer, calibration("model-a", "a-2", at_80=0.5))
    record_or_check(writer, calibration("model-b", "b-1"))  # each model has its own
    assert recorded_version(reader, "model-a") == "a-1"
    assert recorded_version(reader, "model-b") == "b-1"
    engine.dispose()


def test_recording_replaces_and_names_the_previous(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade_schema(engine)
    reader, writer = session_factories(engine)
    assert record(writer, calibration("model-a", "a-1")) is None
    assert record(writer, calibration("model-a", "a-2", at_80=0.5)) == "a-1"
    assert recorded_version(reader, "model-a") == "a-2"
    record_or_check(writer, calibration("model-a", "a-2", at_80=0.5))
    with pytest.raises(CalibrationMismatchError):
        record_or_check(writer, calibration("model-a", "a-1"))
    engine.dispose()
