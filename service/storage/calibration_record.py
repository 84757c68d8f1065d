"""Which Similarity calibration the deployment serves, recorded in the database so that every
replica serves the same one: Similarity is what clients compare with their thresholds, and two
replicas on different calibrations would answer the same search differently."""

from __future__ import annotations

import json
import time

from sqlalchemy.orm import Session, sessionmaker

from ml.similarity import Calibration
from service.storage.schema import CalibrationRow


class CalibrationMismatchError(RuntimeError):
    """This replica's calibration is not the one the deployment records."""


def recorded_version(reader: sessionmaker[Session], model_version: str) -> str | None:
    with reader() as session:
        row = session.get(CalibrationRow, model_version)
        return row.calibration_version if row else None


def record_or_check(writer: sessionmaker[Session], calibration: Calibration) -> None:
    """Record `calibration` when the deployment has none for its model version yet; otherwise
    refuse it unless it is the recorded one."""
    with writer() as session, session.begin():
        row = session.get(CalibrationRow, calibration.model_version)
        if row is None:
            session.add(_row(calibration))
            return
        if row.calibration_version != calibration.calibration_version:
            raise CalibrationMismatchError(mismatch(calibration, row.calibration_version))


def record(writer: sessionmaker[Session], calibration: Calibration) -> str | None:
    """Make `calibration` the deployment's; returns the version it replaces, if any."""
    with writer() as session, session.begin():
        row = session.get(CalibrationRow, calibration.model_version)
        previous = row.calibration_version if row else None
        if row is not None:
            session.delete(row)
            session.flush()
        session.add(_row(calibration))
        return previous


def mismatch(calibration: Calibration, recorded: str) -> str:
    return (
        f"this replica's Similarity calibration for {calibration.model_version} is "
        f"{calibration.calibration_version}, but the deployment records {recorded}: give every "
        "replica the same calibration file (`facebank calibrate` wrote it into one data "
        "directory; copy it, or point FACEBANK_CALIBRATION_FILE at it)"
    )


def _row(calibration: Calibration) -> CalibrationRow:
    knots = list(zip(calibration.cosines, calibration.similarities, strict=True))
    return CalibrationRow(
        model_version=calibration.model_version,
        calibration_version=calibration.calibration_version,
        knots=json.dumps(knots),
        recorded_at=time.time(),
    )
