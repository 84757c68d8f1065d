"""Server start-up time with a large collection: full rebuild, from a snapshot, and catch-up.

    python -m benchmarks.restart [--faces 1000000]

Seeds N synthetic 128-d faces straight into an embedded SQLite database (as IndexFaces stores
them, index events included), then times `facebank serve` from launch to /readyz = 200:
1. no snapshot (the index is rebuilt from the whole event log);
2. after a graceful stop (the shutdown snapshot is loaded);
3. after 10,000 more faces were added while the server was down (snapshot plus catch-up).
A start on an empty database gives the fixed cost (model loading and warm-up) for comparison.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
import uuid
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, func, insert, select

from benchmarks import RESULTS
from benchmarks.search_scale import random_units
from ml.face_models import FACENET_2017
from service.storage.database import make_engine, upgrade_schema
from service.storage.schema import CollectionRow, FaceRow, ImageRow, IndexEventRow
from service.testing.local_server import start_server, stop_server

CHUNK = 20_000


def seed(database_url: str, count: int, rng: np.random.Generator) -> None:
    engine = make_engine(database_url)
    upgrade_schema(engine)
    with engine.begin() as connection:
        collection_pk = (
            connection.scalar(select(CollectionRow.pk))
            or connection.execute(
                insert(CollectionRow).values(
                    collection_id="big",
                    face_model_version=FACENET_2017.face_model_version,
                    created_at=time.time(),
                    face_count=0,
                    user_count=0,
                    tags="{}",
                )
            ).inserted_primary_key[0]
        )
        image_pk = connection.execute(
            insert(ImageRow).values(
                collection_pk=collection_pk,
                image_sha256=uuid.uuid4().hex,
                external_key="",
                image_id=str(uuid.uuid4()),
            )
        ).inserted_primary_key[0]
    for start in range(0, count, CHUNK):
        _seed_chunk(
            engine, collection_pk, image_pk, random_units(min(CHUNK, count - start), 128, rng)
        )
    engine.dispose()


def _seed_chunk(engine: Engine, collection_pk: int, image_pk: int, vectors: np.ndarray) -> None:
    now = time.time()
    rows = [
        {
            "face_id": str(uuid.uuid4()),
            "collection_pk": collection_pk,
            "image_pk": image_pk,
            "image_id": "00000000-0000-0000-0000-000000000000",
            "external_image_id": None,
            "user_pk": None,
            "left": 0.1,
            "top": 0.1,
            "width": 0.2,
            "height": 0.2,
            "confidence": 99.0,
            "model_version": FACENET_2017.face_model_version,
            "embedding": vector.tobytes(),
            "created_at": now,
        }
        for vector in vectors
    ]
    with engine.begin() as connection:
        first = (connection.scalar(select(func.max(FaceRow.pk))) or 0) + 1
        connection.execute(insert(FaceRow), rows)
        connection.execute(
            insert(IndexEventRow),
            [
                {"collection_pk": collection_pk, "kind": "face_add", "target_pk": pk}
                for pk in range(first, first + len(rows))
            ],
        )
        connection.execute(
            CollectionRow.__table__.update().values(face_count=CollectionRow.face_count + len(rows))
        )


def timed_start(work: Path, data_dir: Path, memory: dict[str, float] | None = None) -> float:
    """Seconds until the server is ready (indexes loaded); its resident memory then, in MiB,
    goes into `memory["rss_mib"]` when asked for."""
    started = time.perf_counter()
    server = start_server(work, {"FACEBANK_DATA_DIR": str(data_dir)})
    elapsed = time.perf_counter() - started
    if memory is not None:
        status = Path(f"/proc/{server.process.pid}/status").read_text().splitlines()
        rss_kib = next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
        memory["rss_mib"] = rss_kib / 1024
    stop_server(server)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=1_000_000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/facebank-restart-bench"))
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    data_dir = args.work / "data"
    data_dir.mkdir(parents=True)
    url = f"sqlite:///{data_dir / 'facebank.db'}"
    rng = np.random.default_rng(0)
    empty_memory: dict[str, float] = {}
    loaded_memory: dict[str, float] = {}
    empty = timed_start(args.work, args.work / "empty", empty_memory)
    began = time.perf_counter()
    seed(url, args.faces, rng)
    seeding = time.perf_counter() - began
    rebuild = timed_start(args.work, data_dir)  # graceful stop writes the snapshot
    snapshot = timed_start(args.work, data_dir, loaded_memory)
    seed(url, 10_000, rng)
    catch_up = timed_start(args.work, data_dir)
    report = {
        "faces": args.faces,
        "seconds": {
            "empty_database": empty,
            "seeding": seeding,
            "rebuild_without_snapshot": rebuild,
            "from_snapshot": snapshot,
            "snapshot_plus_10k_catch_up": catch_up,
        },
        # What a replica holds for the collection: the FAISS index (and, with the torch search
        # context, its device mirror): the sizing rule's memory per million faces.
        "rss_mib": {"empty_database": empty_memory["rss_mib"], "loaded": loaded_memory["rss_mib"]},
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "restart-cpu.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
