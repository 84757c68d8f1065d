"""What the HTTP surfaces read of the running server, typed: one AppState per app, kept on
Starlette's untyped `app.state` under a single name and read back through `app_state`."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI, Request
from prometheus_client import CollectorRegistry

from service import errors
from service.access.keys import KeyRing
from service.http.observe import Observer
from service.operations.dispatch import Operations
from service.settings import Settings
from service.streaming.cameras import Cameras
from service.streaming.processors import StreamProcessors


@dataclass
class AppState:
    settings: Settings
    keyring: KeyRing
    cameras: Cameras
    metrics: CollectorRegistry
    observer: Observer
    ready: bool = False  # models loaded and warmed, indexes caught up
    operations: Operations | None = None  # once the lifespan has built them
    calibration_source: str = ""  # the calibration file loaded at start, or "packaged"
    processors: StreamProcessors | None = None  # this replica's stream workers, once started

    def running(self) -> Operations:
        if self.operations is None:
            raise errors.ServiceUnavailableError("The server is starting; retry shortly")
        return self.operations


def attach(app: FastAPI, state: AppState) -> None:
    app.state.facebank = state


def app_state(request: Request) -> AppState:
    state = request.app.state.facebank
    assert isinstance(state, AppState)
    return state
