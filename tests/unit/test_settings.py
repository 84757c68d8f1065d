from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from service.build import search_device
from service.settings import Settings

SECRET_1, SECRET_2 = "n8Vq2LxRt5ZkW3pJ", "Hc7mD4sYb9QeF2uA"


def test_defaults_listen_on_loopback_8080(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FACEBANK_HOST", "FACEBANK_PORT", "FACEBANK_ACCESS_KEYS"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.keys == {}


def test_environment_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEBANK_PORT", "9001")
    monkeypatch.setenv("FACEBANK_ACCESS_KEYS", f"K1:{SECRET_1}, K2:{SECRET_2}")
    settings = Settings()
    assert settings.port == 9001
    assert {k: v.secret for k, v in settings.keys.items()} == {"K1": SECRET_1, "K2": SECRET_2}


def test_refuses_public_interface_without_keys() -> None:
    with pytest.raises(ValidationError, match="FACEBANK_ACCESS_KEYS"):
        Settings(host="0.0.0.0", access_keys="")
    assert Settings(host="0.0.0.0", access_keys=f"K:{SECRET_1}").host == "0.0.0.0"
    assert Settings(host="::1", access_keys="").host == "::1"


def test_malformed_keys_and_unknown_model() -> None:
    with pytest.raises(ValidationError):
        Settings(access_keys="no-secret-here")
    with pytest.raises(ValidationError):
        Settings(model_version="nonexistent")


def test_search_backend_follows_the_model_device() -> None:
    assert search_device(Settings(device="cpu")) == ""  # auto on a CPU node: FAISS
    assert search_device(Settings(device="cpu", search_backend="torch")) == "cpu"
    assert search_device(Settings(device="cuda", search_backend="faiss")) == ""
    assert search_device(Settings(device="cuda")) == "cuda"  # auto on a GPU node: torch


@pytest.mark.parametrize("blank", ["", " ", ",", " , ,, "])
def test_keys_that_parse_to_nothing_are_no_keys(blank: str) -> None:
    assert Settings(access_keys=blank).keys == {}
    with pytest.raises(ValidationError, match="FACEBANK_ACCESS_KEYS"):
        Settings(host="0.0.0.0", access_keys=blank)


def test_readme_documents_every_setting_and_no_other() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    documented = set(re.findall(r"^\| `FACEBANK_(\w+)` \|", readme, flags=re.MULTILINE))
    assert documented == {name.upper() for name in Settings.model_fields}


@pytest.mark.parametrize(
    "secret",
    [
        "CHANGE_ME_SECRET",  # deploy/facebank.env.example's
        "change-me-please-now",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",  # AWS's documentation's example
        "''",
        "null",
        "short-secret",
        "xxxxxxxxxxxxxxxxxxxxxxxx",
    ],
)
def test_placeholder_and_weak_secrets_refuse_to_start(secret: str) -> None:
    with pytest.raises(ValidationError, match="FACEBANK_ACCESS_KEYS: the secret of key K"):
        Settings(host="0.0.0.0", access_keys=f"K:{secret}")


def test_the_env_examples_placeholders_refuse_to_start() -> None:
    with pytest.raises(ValidationError, match="FACEBANK_TOKEN_SECRET is a placeholder"):
        Settings(token_secret="CHANGE_ME_LONG_RANDOM_STRING")
    with pytest.raises(ValidationError, match="FACEBANK_DATABASE_URL holds a placeholder"):
        Settings(database_url="postgresql+psycopg://facebank:CHANGE_ME@127.0.0.1/facebank")
    real = "postgresql+psycopg://facebank:k3Pq9@db.example.com/facebank"
    assert Settings(database_url=real).database_url == real  # a host may say "example"


def test_every_placeholder_in_the_env_example_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    example = Path(__file__).resolve().parents[2] / "deploy" / "facebank.env.example"
    lines = [line.partition("=") for line in example.read_text().splitlines()]
    placeholders = {name: value for name, _, value in lines if "CHANGE_ME" in value}
    assert len(placeholders) >= 3  # keys, database password, token secret
    for name, value in placeholders.items():
        monkeypatch.setenv(name, value)
        with pytest.raises(ValidationError, match=name):
            Settings()
        monkeypatch.delenv(name)


def test_the_database_password_is_read_from_its_file(tmp_path: Path) -> None:
    secret = tmp_path / "postgres.secret"
    secret.write_text("s3cret-pa55word\n")  # as `echo ... > file` leaves it
    url = "postgresql+psycopg://facebank@postgres:5432/facebank"
    settings = Settings(database_url=url, database_password_file=secret)
    assert settings.database_address() == (
        "postgresql+psycopg://facebank:s3cret-pa55word@postgres:5432/facebank"
    )
    with pytest.raises(ValidationError, match="FACEBANK_DATABASE_PASSWORD_FILE"):
        Settings(database_url=url, database_password_file=tmp_path / "missing")
