"""All server settings, read once from FACEBANK_* environment variables at start-up."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from ml.face_models import DEFAULT_MODEL_VERSION, MODEL_SPECS
from ml.manifest import default_models_dir
from ml.similarity import deployment_calibration_path

# ml.cpu_precision's Setting (a unit test holds them equal), spelled here so that reading the
# settings does not load torch.
EmbedCpuPrecision = Literal[
    "auto", "fp32", "bf16", "onnxruntime", "openvino", "openvino-fp16", "openvino-bf16"
]

LOOPBACK_NAMES = {"localhost"}
# A secret shorter than this is guessable; AWS's own secret keys have 40 characters.
MIN_SECRET_LENGTH = 16
# Words that mark a value copied from an example and never replaced.
PLACEHOLDER_WORDS = ("changeme", "change_me", "replaceme", "replace_me", "placeholder", "example")


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def weak_secret(secret: str) -> str | None:
    """Why `secret` must not guard a server (a placeholder, blank-looking, short, one
    character repeated); None when it may."""
    bare = secret.strip().strip("'\"<>{}")
    folded = bare.lower().replace("-", "_")
    if not bare or folded in ("none", "null", "secret", "password"):
        return "is blank or a stand-in word"
    if any(word in folded for word in PLACEHOLDER_WORDS):
        return "is a placeholder from an example: set a random one (openssl rand -base64 30)"
    if len(bare) < MIN_SECRET_LENGTH:
        return f"is shorter than {MIN_SECRET_LENGTH} characters"
    if len(set(bare)) < 4:
        return "repeats too few characters"
    return None


@dataclass(frozen=True)
class VideoSettings:
    """How stored-video jobs run: the FACEBANK_VIDEO_* settings, read from Settings (which holds
    their defaults)."""

    sample_ms: int
    max_bytes: int
    max_duration_s: float
    max_jobs: int
    workers: int
    lease_s: float
    max_attempts: int
    retention_s: float


@dataclass(frozen=True)
class StreamSettings:
    """How stream processors run: the FACEBANK_STREAM_* settings, read from Settings."""

    sample_ms: int
    max_running: int
    lease_s: float


@dataclass(frozen=True)
class QueueSettings:
    """One stage's cross-request batching: the most items per pass, how long a pass waits for
    more, and how many may wait before the server answers ThrottlingException."""

    max_batch: int
    max_wait_s: float
    max_queue: int


class AccessKey:
    def __init__(self, key_id: str, secret: str) -> None:
        self.key_id = key_id
        self.secret = secret


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FACEBANK_", env_nested_delimiter="__")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    data_dir: Path = Path("data")
    models_dir: Path = Field(default_factory=default_models_dir)
    model_version: str = DEFAULT_MODEL_VERSION
    # The deployment's Similarity calibration for model_version (`facebank calibrate` writes
    # it); unset: <data_dir>/calibration/<model_version>.json when that exists, else the one
    # packaged with the model.
    calibration_file: Path | None = None
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # KEY:SECRET[,KEY:SECRET...]; empty means no authentication (loopback only).
    access_keys: SecretStr = SecretStr("")
    # Keys with IAM-style policies and rates, from a JSON file only the server's user can read
    # (service/access/keys.py); reloaded on SIGHUP and when it changes.
    access_keys_file: Path | None = None
    region: str = "us-east-1"
    # How far a SigV4 X-Amz-Date may stray from the server clock, as AWS allows.
    signature_max_skew_seconds: int = Field(default=300, ge=1)
    torch_threads: int = Field(default=0, ge=0)  # 0: torch's default
    detection_max_side: int = Field(default=1920, ge=160)
    # The smallest face found in a 1920-px frame, in proportion in other sizes, never below
    # MTCNN's own 20 px: 40 is Rekognition's documented minimum (40x40 in 1920x1080); 20 gives
    # MTCNN's 20 px in every frame (smaller faces in large frames, at more cost).
    min_face_size: int = Field(default=40, ge=20)
    # "mesh": Rekognition's 30 landmarks from the face mesh and iris networks, run on every face
    # (the mesh also confirms faces); "five": MTCNN's five points only, for CPU nodes that
    # need the old speed (docs/performance.md measures the difference).
    landmarks: Literal["mesh", "five"] = "mesh"
    # A detection the mesh finds no face in (presence below this) is dropped unless MTCNN is
    # at least face_sure_probability sure of it (docs/accuracy.md, `benchmarks.mesh_check`).
    face_min_presence: float = Field(default=0.1, ge=0, le=1)
    face_sure_probability: float = Field(default=0.995, ge=0, le=1)
    max_image_pixels: int = Field(default=64_000_000, ge=6400)
    log_level: str = "info"
    # "text" for a terminal; "json": one JSON object per line (and per request), for collectors.
    log_format: Literal["text", "json"] = "text"
    # Empty: SQLite at <data_dir>/facebank.db. PostgreSQL: postgresql+psycopg://user:pw@host/db
    database_url: str = ""
    # The database password, read from this file into database_url (which then names none): a
    # compose secret or systemd credential that the database server reads too, written once.
    database_password_file: Path | None = None
    account_id: str = Field(default="000000000000", pattern=r"^\d{12}$")
    # Signs NextToken values; empty: a random key kept in the data dir (set it for replicas).
    token_secret: SecretStr = SecretStr("")
    # Write an index snapshot once catch-ups have applied this many changes (and at shutdown).
    snapshot_every: int = Field(default=10_000, ge=1)
    max_faces_per_collection: int = Field(default=20_000_000, ge=1)
    # "flat": exact search. "ivf": approximate search for collections of ivf_min_vectors faces
    # or more (see benchmarks/ivf_recall.py for the recall it costs).
    index_kind: Literal["flat", "ivf"] = "flat"
    ivf_min_vectors: int = Field(default=200_000, ge=1_000)
    ivf_nprobe: int = Field(default=512, ge=1)
    # JPEG decoder: "torchvision" on the model device (nvJPEG on CUDA, batched across
    # requests; libjpeg-turbo on the CPU, bit-identical to Pillow on every test photo and 3x
    # faster per image); "pillow" in each request. PNGs, CMYK JPEGs and JPEGs the device
    # decoder refuses are decoded with Pillow either way.
    jpeg_decoder: Literal["torchvision", "pillow"] = "torchvision"
    decode_batch_size: int = Field(default=64, ge=1)
    decode_batch_wait_ms: float = Field(default=1.0, ge=0)
    decode_queue_size: int = Field(default=256, ge=1)
    # Cross-request batching of the detector and the embedder, and how much work the server
    # admits at once: beyond max_inflight requests (or a full detector or embedder queue) it
    # answers ThrottlingException.
    detect_batch_size: int = Field(default=8, ge=1)
    # On the CPU, a detector batch in one pass of every torch thread (1) or split over N
    # one-thread workers; 0: time both on this machine once (cached in the data dir) and take
    # the faster (ml/cpu_levers.py).
    detect_workers: int = Field(default=0, ge=0)
    detect_batch_wait_ms: float = Field(default=2.0, ge=0)
    detect_queue_size: int = Field(default=64, ge=1)
    # How the CPU embedder runs. "auto": time torch in fp32 and bf16, ONNX Runtime in fp32 and
    # OpenVINO in fp32, fp16 and bf16 (those it has kernels for here) on this machine (once;
    # cached in the data dir) and serve the fastest, fp16 and bf16 only where their vectors stay
    # within the accepted drift (ml/cpu_precision.py). "fp32" (torch), "bf16" (torch),
    # "onnxruntime" (fp32), "openvino" (fp32), "openvino-fp16" or "openvino-bf16" forces one,
    # e.g. fp32 for replicas on different CPUs that must store identical vectors.
    embed_cpu_precision: EmbedCpuPrecision = "auto"
    # Deprecated, kept so existing deployments start: false is embed_cpu_precision=fp32.
    embed_cpu_bf16: bool | None = None
    embed_batch_size: int = Field(default=32, ge=1)
    embed_batch_wait_ms: float = Field(default=2.0, ge=0)
    embed_queue_size: int = Field(default=256, ge=1)
    max_inflight: int = Field(default=32, ge=1)
    # Pixels of decoded images in flight at once: decoded images dominate a request's memory
    # (docs/performance.md measures it), so this bounds the server's. At least one largest
    # image must fit.
    max_inflight_pixels: int = Field(default=256_000_000, ge=6400)
    # Where exact searches run: "faiss" on the host CPU; "torch" on the model device (fp16
    # matmul + top-k on CUDA); "auto": torch when that device is CUDA, otherwise faiss.
    # Concurrent searches of one collection are batched into one pass either way.
    search_backend: Literal["auto", "faiss", "torch"] = "auto"
    # Where S3Object images are read: an S3-compatible endpoint (MinIO, Ceph, or AWS's regional
    # S3 endpoint); empty: S3Object images are refused. Credentials come the usual AWS way.
    s3_endpoint_url: str = ""
    s3_region: str = ""  # empty: FACEBANK_REGION
    search_batch_size: int = Field(default=64, ge=1)
    search_batch_wait_ms: float = Field(default=0.5, ge=0)
    search_queue_size: int = Field(default=1024, ge=1)
    # Stored video. Completion messages go to an SNS-compatible endpoint; empty: a
    # NotificationChannel is refused (no client waits for a message that never comes).
    sns_endpoint_url: str = ""
    sns_region: str = ""  # empty: FACEBANK_REGION
    # One frame per this many milliseconds of video goes through detection (docs/video.md
    # measures what coarser sampling saves and misses).
    video_sample_ms: int = Field(default=200, ge=1)
    video_max_bytes: int = Field(default=10 * 1024**3, ge=1)  # Rekognition's 10 GB
    video_max_duration_s: float = Field(default=6 * 3600, gt=0)  # Rekognition's 6 hours
    video_max_jobs: int = Field(default=20, ge=1)  # jobs in progress at once, all replicas
    video_workers: int = Field(default=1, ge=0)  # jobs this replica runs at once; 0: none
    # A running job's claim, renewed a few times per lease; a job whose claim lapses (its
    # server died) is taken over by any replica.
    video_lease_s: float = Field(default=30.0, ge=1)
    video_max_attempts: int = Field(default=3, ge=1)  # claims before a job is given up
    video_retention_s: float = Field(default=7 * 86400, gt=0)  # Rekognition keeps 7 days
    # Live cameras (stream processors). The cameras a processor's Input names, by stream name:
    # a JSON file only the server's user can read (it holds camera passwords), reloaded when it
    # changes (service/streaming/cameras.py).
    video_streams_file: Path | None = None
    # Where records go: a Kinesis-compatible endpoint (AWS's or another); empty: AWS's regional
    # endpoint as botocore finds it. Credentials the usual AWS way.
    kinesis_endpoint_url: str = ""
    kinesis_region: str = ""  # empty: FACEBANK_REGION
    # A live camera's newest frame is analysed once per this many ms (frames in between are
    # decoded and skipped, never queued).
    stream_sample_ms: int = Field(default=200, ge=20)
    # Processors running at once across the deployment (each replica runs up to this many);
    # Starting one more is LimitExceededException. 2: on a 2-core node two cameras share the
    # batched stages for more records at little latency, four add latency and no records
    # (docs/live-cameras.md measures it).
    stream_max_running: int = Field(default=2, ge=0)
    # A running processor's claim, renewed three times per lease: a replica that dies loses
    # its processors to another within this (plus a second of polling).
    stream_lease_s: float = Field(default=10.0, ge=1)

    @model_validator(mode="after")
    def _largest_image_fits_the_budget(self) -> Settings:
        if self.max_inflight_pixels < self.max_image_pixels:
            raise ValueError(
                "FACEBANK_MAX_INFLIGHT_PIXELS must be at least FACEBANK_MAX_IMAGE_PIXELS, "
                "or the largest accepted image could never be admitted"
            )
        return self

    @field_validator("model_version")
    @classmethod
    def _known_model(cls, value: str) -> str:
        if value not in MODEL_SPECS:
            raise ValueError(f"unknown model version {value!r}; known: {sorted(MODEL_SPECS)}")
        return value

    @field_validator("access_keys")
    @classmethod
    def _well_formed_keys(cls, value: SecretStr) -> SecretStr:
        _parse_keys(value.get_secret_value())
        return value

    @field_validator("token_secret")
    @classmethod
    def _no_placeholder_token_secret(cls, value: SecretStr) -> SecretStr:
        problem = weak_secret(value.get_secret_value()) if value.get_secret_value() else None
        if problem:
            raise ValueError(f"FACEBANK_TOKEN_SECRET {problem}")
        return value

    @field_validator("database_url")
    @classmethod
    def _no_placeholder_password(cls, value: str) -> str:
        try:
            password = make_url(value).password if value else None
        except ArgumentError:  # not a URL: opening the database says so
            password = None
        folded = str(password or "").lower().replace("-", "_")
        if any(word in folded for word in PLACEHOLDER_WORDS):
            raise ValueError(
                "FACEBANK_DATABASE_URL holds a placeholder from an example: put the database "
                "role's real password in it"
            )
        return value

    @model_validator(mode="after")
    def _no_open_server_without_keys(self) -> Settings:
        # Judged on the parsed keys: a value such as " " or "," holds no key at all.
        if not self.keys and self.access_keys_file is None and not is_loopback(self.host):
            raise ValueError(
                f"refusing to listen on {self.host} without FACEBANK_ACCESS_KEYS or "
                "FACEBANK_ACCESS_KEYS_FILE: "
                "set KEY:SECRET pairs or listen on 127.0.0.1"
            )
        return self

    @property
    def video(self) -> VideoSettings:
        return VideoSettings(
            sample_ms=self.video_sample_ms,
            max_bytes=self.video_max_bytes,
            max_duration_s=self.video_max_duration_s,
            max_jobs=self.video_max_jobs,
            workers=self.video_workers,
            lease_s=self.video_lease_s,
            max_attempts=self.video_max_attempts,
            retention_s=self.video_retention_s,
        )

    @property
    def cpu_precision(self) -> EmbedCpuPrecision:
        if self.embed_cpu_precision == "auto" and self.embed_cpu_bf16 is False:
            return "fp32"
        return self.embed_cpu_precision

    @property
    def streams(self) -> StreamSettings:
        return StreamSettings(
            sample_ms=self.stream_sample_ms,
            max_running=self.stream_max_running,
            lease_s=self.stream_lease_s,
        )

    def queue(self, stage: Literal["decode", "detect", "embed", "search"]) -> QueueSettings:
        """A stage's batching (attribute networks batch face chips as the embedder does)."""
        return QueueSettings(
            getattr(self, f"{stage}_batch_size"),
            getattr(self, f"{stage}_batch_wait_ms") / 1000.0,
            getattr(self, f"{stage}_queue_size"),
        )

    def database_address(self) -> str:
        """database_url with the password from database_password_file, when one is named."""
        if self.database_password_file is None or not self.database_url:
            return self.database_url
        password = self.database_password_file.read_text().strip()
        return make_url(self.database_url).set(password=password).render_as_string(False)

    @model_validator(mode="after")
    def _password_file_is_readable(self) -> Settings:
        if self.database_password_file is not None:
            if not self.database_url:
                raise ValueError("FACEBANK_DATABASE_PASSWORD_FILE needs FACEBANK_DATABASE_URL")
            try:
                self.database_password_file.read_text()
            except OSError as exc:
                raise ValueError(
                    f"FACEBANK_DATABASE_PASSWORD_FILE {self.database_password_file}: {exc.strerror}"
                ) from None
        return self

    def deployment_calibration_path(self) -> Path:
        """Where this deployment's own calibration is read from and written to."""
        return self.calibration_file or deployment_calibration_path(
            self.data_dir, self.model_version
        )

    def calibration_in_use(self) -> Path | None:
        """The deployment's calibration file when there is one; None: the packaged one."""
        path = self.deployment_calibration_path()
        if self.calibration_file is not None or path.exists():
            return path
        return None

    @property
    def keys(self) -> dict[str, AccessKey]:
        return {k.key_id: k for k in _parse_keys(self.access_keys.get_secret_value())}


def _parse_keys(raw: str) -> list[AccessKey]:
    keys = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        key_id, sep, secret = item.partition(":")
        if not sep or not key_id or not secret:
            raise ValueError("FACEBANK_ACCESS_KEYS must be KEY:SECRET[,KEY:SECRET...]")
        problem = weak_secret(secret)
        if problem:
            raise ValueError(f"FACEBANK_ACCESS_KEYS: the secret of key {key_id} {problem}")
        keys.append(AccessKey(key_id, secret))
    return keys
