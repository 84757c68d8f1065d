"""Identification through the real service: closed-set top-1/top-5 and open-set false matches,
for SearchFacesByImage and SearchUsersByImage, with 1, 3 and all enrolment photos per user.

    python -m benchmarks.identification [--endpoint URL]

Enrolled: the 5 five-celebrities people (train photos; each user holds its person's faces).
Queries: their 25 validation photos (closed set), and 45 photos of 10 people never enrolled
(every 17th lfw-george-w-bush photo, facenet-pytorch, face-recognition-examples): open set.
A face search ranks people by their best face; a user search ranks user vectors. "Single face"
Similarity is the mean over the true person's individual faces: what one face vector gives.
With 5 people top-5 is trivially 1.0 and is reported in the JSON only.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import numpy as np
from botocore import UNSIGNED
from botocore.config import Config

from benchmarks import RESULTS
from benchmarks.photos import default_faces
from ml.evaluation.identification import Ranking as People
from ml.evaluation.identification import closed_set, open_set
from ml.evaluation.statistics import labelled_images
from service.testing.local_server import endpoint

OPEN_SET_THRESHOLDS = [80.0, 99.0]
ENROLMENTS = (1, 3, None)  # None: every train photo


def people(faces: Path) -> tuple[dict[str, list[Path]], list[tuple[str, Path]], list[Path]]:
    train: dict[str, list[Path]] = {}
    for label, path in labelled_images(faces / "five-celebrities" / "train"):
        train.setdefault(label, []).append(path)
    known = labelled_images(faces / "five-celebrities" / "val")
    unknown = [path for _, path in labelled_images(faces / "lfw-george-w-bush")][::17]
    for folder in ("facenet-pytorch/test_images", "face-recognition-examples/train"):
        unknown += [path for _, path in labelled_images(faces / folder)]
    return train, known, unknown


def enrol(client: Any, name: str, train: dict[str, list[Path]], count: int | None) -> None:
    client.create_collection(CollectionId=name)
    for person, photos in train.items():
        face_ids = []
        for i, photo in enumerate(photos[:count]):
            response = client.index_faces(
                CollectionId=name,
                Image={"Bytes": photo.read_bytes()},
                ExternalImageId=f"{person}.{i}",
                MaxFaces=1,
                QualityFilter="NONE",
            )
            face_ids += [record["Face"]["FaceId"] for record in response["FaceRecords"]]
        client.create_user(CollectionId=name, UserId=person)
        client.associate_faces(
            CollectionId=name, UserId=person, FaceIds=face_ids, UserMatchThreshold=0.0
        )


@dataclass(frozen=True)
class Ranking:
    by_face: list[tuple[str, float]]  # people by their best face's Similarity, best first
    by_user: list[tuple[str, float]]  # people by user-vector Similarity, best first
    single_face: dict[str, float]  # person -> mean Similarity over that person's faces


def ranked(client: Any, name: str, photo: Path) -> Ranking:
    image = {"Bytes": photo.read_bytes()}
    faces = client.search_faces_by_image(
        CollectionId=name, Image=image, MaxFaces=200, FaceMatchThreshold=0.0
    )["FaceMatches"]
    scores: dict[str, list[float]] = {}
    for match in faces:
        scores.setdefault(match["Face"]["ExternalImageId"].split(".")[0], []).append(
            match["Similarity"]
        )
    users = client.search_users_by_image(
        CollectionId=name, Image=image, MaxUsers=10, UserMatchThreshold=0.0
    )["UserMatches"]
    return Ranking(
        by_face=sorted(((p, max(s)) for p, s in scores.items()), key=lambda item: -item[1]),
        by_user=[(m["User"]["UserId"], m["Similarity"]) for m in users],
        single_face={p: float(np.mean(s)) for p, s in scores.items()},
    )


def false_matches_at(threshold: float, unknown: list[tuple[str, People]]) -> list[Any]:
    """The open-set queries whose best match reached `threshold`: photo, person, Similarity."""
    reached = [(photo, r[0]) for photo, r in unknown if r and r[0][1] >= threshold]
    return [[photo, person, round(score, 1)] for photo, (person, score) in reached]


def evaluate(client: Any, faces: Path) -> list[dict[str, Any]]:
    train, known, unknown = people(faces)
    rows = []
    for count in ENROLMENTS:
        name = f"ident-{count or 'all'}"
        enrol(client, name, train, count)
        known_rankings = [(person, ranked(client, name, photo)) for person, photo in known]
        unknown_rankings = [
            (str(photo.relative_to(faces)), ranked(client, name, photo)) for photo in unknown
        ]
        single = float(np.mean([r.single_face.get(p, 0.0) for p, r in known_rankings]))
        for label, pick in (("SearchFacesByImage", "by_face"), ("SearchUsersByImage", "by_user")):
            known_ranked = [(p, getattr(r, pick)) for p, r in known_rankings]
            unknown_ranked = [(photo, getattr(r, pick)) for photo, r in unknown_rankings]
            rows.append(
                {
                    "operation": label,
                    "enrolment_photos": count or "all",
                    **closed_set(known_ranked),
                    "open_set": open_set(
                        known_ranked, [r for _, r in unknown_ranked], OPEN_SET_THRESHOLDS
                    ),
                    "false_matches_at_80": false_matches_at(80.0, unknown_ranked),
                    "true_match_single_face_similarity_mean": single,
                }
            )
        client.delete_collection(CollectionId=name)
    return rows


def markdown(rows: list[dict[str, Any]], known: int, unknown: int) -> str:
    lines = [
        f"Closed set: {known} queries of 5 enrolled people; open set: {unknown} queries of "
        "10 people never enrolled. Similarity means over the closed-set queries.",
        "",
        "| operation | photos per user | top-1 | true match | single face | best impostor | "
        "open-set false matches >= 80 | >= 99 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['operation']} | {r['enrolment_photos']} | {r['rank1']:.3f} | "
            f"{r['true_match_similarity_mean']:.1f} | "
            f"{r['true_match_single_face_similarity_mean']:.1f} | "
            f"{r['best_impostor_similarity_mean']:.1f} | "
            f"{r['open_set'][0]['fpir']:.3f} | {r['open_set'][1]['fpir']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint")
    parser.add_argument("--faces", type=Path, default=default_faces())
    args = parser.parse_args()
    with endpoint(args.endpoint, "facebank-ident") as url:
        client = boto3.client(
            "rekognition",
            endpoint_url=url,
            region_name="us-east-1",
            config=Config(signature_version=UNSIGNED),
        )
        rows = evaluate(client, args.faces)
    _, known, unknown = people(args.faces)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "identification.json").write_text(json.dumps(rows, indent=2) + "\n")
    table = markdown(rows, len(known), len(unknown))
    (RESULTS / "identification.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
