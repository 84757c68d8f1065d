"""The console at /console: the people who run facebank look at collections, try photos, and
watch video jobs and cameras in the browser, under the same keys and policies as the API
(views.py), served by the same server, offline (every asset is in this package)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from service.http.console.session import Sessions, SignInLimiter
from service.http.console.views import HERE, SignInNeededError, router, signed_out
from service.settings import Settings
from service.storage.pagination import load_or_create_secret


@dataclass
class Console:
    sessions: Sessions
    limiter: SignInLimiter


def install(app: FastAPI, settings: Settings) -> None:
    secret = settings.token_secret.get_secret_value().encode() or load_or_create_secret(
        settings.data_dir / "token.key"
    )
    app.state.facebank_console = Console(Sessions(secret), SignInLimiter())
    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")
    app.include_router(router)
    app.add_exception_handler(SignInNeededError, signed_out)
