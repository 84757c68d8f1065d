"""`facebank evaluate`: verification and identification accuracy of any endpoint that speaks
Rekognition's API (a facebank replica, or Amazon Rekognition itself), on a folder of
`<person>/<photo>` files.

By default every photo is indexed once into a temporary collection and each face searched
against all the others at threshold 0 (SearchFaces), which gives every pair's Similarity in
one call per photo; identification then uses the same collection (one photo per person
enrolled; and users, with AssociateFaces). `collection_free` compares pairs with CompareFaces
instead and stores nothing at the endpoint. The temporary collection is deleted at the end,
also on Ctrl-C."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from tqdm import tqdm

from ml.evaluation.identification import Ranking
from ml.evaluation.statistics import capped_pairs, labelled_images
from service.client.gathered import FACE, Gathered

T = TypeVar("T")
MAX_SEARCH_FACES = 4096  # SearchFaces' MaxFaces limit
MAX_USER_FACES = 100  # faces one user may hold, and AssociateFaces' FaceIds limit


@dataclass(frozen=True)
class Photo:
    key: str  # its path below the folder: what reports and records name it by
    person: str
    path: Path


@dataclass(frozen=True)
class Plan:
    """What to gather: the photos, the pairs' caps and the seed, how many calls at once."""

    photos: list[Photo]
    max_genuine: int
    max_impostor: int
    seed: int
    concurrency: int
    progress: bool


def photos_in(folder: Path) -> list[Photo]:
    return [
        Photo(str(path.relative_to(folder)), person, path)
        for person, path in labelled_images(folder)
    ]


def rekognition(endpoint: str | None, region: str) -> Any:
    """A botocore client with the usual AWS credential chain; unsigned where there are no
    credentials (a local facebank without keys)."""
    import botocore.session
    from botocore import UNSIGNED
    from botocore.config import Config

    session = botocore.session.get_session()
    config = Config(retries={"max_attempts": 5, "mode": "standard"}, max_pool_connections=32)
    if session.get_credentials() is None:
        config = config.merge(Config(signature_version=UNSIGNED))
    return session.create_client(
        "rekognition", endpoint_url=endpoint, region_name=region, config=config
    )


def error_code(exc: Exception) -> str | None:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return None


def run_all(plan: Plan, label: str, items: list[T], call: Callable[[T], None]) -> None:
    """`call` on every item, `concurrency` at a time, behind a progress bar with rate and ETA.
    On Ctrl-C, calls not yet started are dropped."""
    if not items:
        return
    executor = ThreadPoolExecutor(max_workers=plan.concurrency)
    try:
        futures = [executor.submit(call, item) for item in items]
        with tqdm(total=len(items), desc=label, unit="call", disable=not plan.progress) as bar:
            for future in futures:
                future.result()
                bar.update()
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


@dataclass
class Gatherer:
    """Gathers scores into `gathered` through `client`, following `plan`."""

    client: Any
    plan: Plan
    gathered: Gathered

    def usable(self) -> list[Photo]:
        return [p for p in self.plan.photos if self.gathered.statuses.get(p.key, ("",))[0] == FACE]

    def pairs(self) -> tuple[list[tuple[Photo, Photo]], list[tuple[Photo, Photo]]]:
        photos = self.usable()
        genuine, impostor = capped_pairs(
            [p.person for p in photos],
            self.plan.max_genuine,
            self.plan.max_impostor,
            self.plan.seed,
        )
        return (
            [(photos[i], photos[j]) for i, j in genuine],
            [(photos[i], photos[j]) for i, j in impostor],
        )

    # -- collection-free: DetectFaces per photo, CompareFaces per pair -------------------------

    def compare_all(self) -> None:
        unseen = [p for p in self.plan.photos if p.key not in self.gathered.statuses]
        run_all(self.plan, "detect", unseen, self._detect)
        genuine, impostor = self.pairs()
        wanted = [
            pair for pair in genuine + impostor if self._pair_key(pair) not in self.gathered.pairs
        ]
        run_all(self.plan, "compare", wanted, self._compare)

    @staticmethod
    def _pair_key(pair: tuple[Photo, Photo]) -> tuple[str, str]:
        return pair[0].key, pair[1].key

    def _detect(self, photo: Photo) -> None:
        try:
            faces = self.client.detect_faces(Image={"Bytes": photo.path.read_bytes()})
        except Exception as exc:
            self._refused(photo, exc)
            return
        self._classify(photo, len(faces["FaceDetails"]))

    def _compare(self, pair: tuple[Photo, Photo]) -> None:
        source, target = pair
        answer = self.client.compare_faces(
            SourceImage={"Bytes": source.path.read_bytes()},
            TargetImage={"Bytes": target.path.read_bytes()},
            SimilarityThreshold=0.0,
        )
        best = max((match["Similarity"] for match in answer["FaceMatches"]), default=0.0)
        self.gathered.pair(source.key, target.key, float(best))

    def _refused(self, photo: Photo, exc: Exception) -> None:
        code = error_code(exc)
        if code is None or code.startswith(("Throttling", "ProvisionedThroughput", "Internal")):
            raise exc
        self.gathered.status(photo.key, "unreadable", f"{code}: {exc}")

    def _classify(self, photo: Photo, faces: int) -> None:
        if faces == 1:
            self.gathered.status(photo.key, FACE)
        elif faces == 0:
            self.gathered.status(photo.key, "no face")
        else:
            self.gathered.status(photo.key, "several faces", f"{faces} faces")

    # -- through a temporary collection ---------------------------------------------------------

    def search_all(self, collection: str, with_users: bool) -> dict[str, str]:
        """Index every photo, search each face against all; then the users' identification.
        Returns each usable photo's FaceId."""
        face_ids: dict[str, str] = {}
        run_all(
            self.plan, "index", self.plan.photos, lambda p: self._index(collection, p, face_ids)
        )
        photo_of = {face: key for key, face in face_ids.items()}
        usable = {p.key for p in self.usable()}
        unsearched = [p for p in self.usable() if p.key not in self.gathered.searches]
        limit = min(MAX_SEARCH_FACES, max(1, len(face_ids)))
        run_all(
            self.plan,
            "search",
            unsearched,
            lambda p: self._search(collection, p, face_ids[p.key], photo_of, usable, limit),
        )
        if with_users:
            self.identify_users(collection, face_ids)
        return face_ids

    def _index(self, collection: str, photo: Photo, face_ids: dict[str, str]) -> None:
        try:
            answer = self.client.index_faces(
                CollectionId=collection,
                Image={"Bytes": photo.path.read_bytes()},
                MaxFaces=1,
                QualityFilter="NONE",
            )
        except Exception as exc:
            self._refused(photo, exc)
            return
        records = answer["FaceRecords"]
        others = sum(
            1 for face in answer.get("UnindexedFaces", []) if "EXCEEDS_MAX_FACES" in face["Reasons"]
        )
        self._classify(photo, len(records) + others)
        if records:
            face_ids[photo.key] = records[0]["Face"]["FaceId"]

    def _search(
        self,
        collection: str,
        photo: Photo,
        face_id: str,
        photo_of: dict[str, str],
        usable: set[str],
        limit: int,
    ) -> None:
        answer = self.client.search_faces(
            CollectionId=collection, FaceId=face_id, FaceMatchThreshold=0.0, MaxFaces=limit
        )
        scores = {}
        for match in answer["FaceMatches"]:
            other = photo_of.get(match["Face"]["FaceId"])
            if other in usable:
                scores[other] = float(match["Similarity"])
        self.gathered.search(photo.key, scores)

    def identify_users(self, collection: str, face_ids: dict[str, str]) -> None:
        split = identification_split(self.usable(), self.plan.seed)
        for user, person in split.user_of.items():
            self.client.create_user(CollectionId=collection, UserId=user)
            self.client.associate_faces(
                CollectionId=collection,
                UserId=user,
                FaceIds=[face_ids[p.key] for p in split.users_enrolment[person]],
                UserMatchThreshold=0.0,
            )
        probes = [p for p in split.users_probes if p.key not in self.gathered.user_rankings]
        run_all(
            self.plan,
            "users",
            probes,
            lambda p: self._search_users(collection, face_ids[p.key], p, split.user_of),
        )

    def _search_users(
        self, collection: str, face_id: str, photo: Photo, user_of: dict[str, str]
    ) -> None:
        answer = self.client.search_users(
            CollectionId=collection, FaceId=face_id, UserMatchThreshold=0.0, MaxUsers=500
        )
        ranking = [
            (user_of[match["User"]["UserId"]], float(match["Similarity"]))
            for match in answer["UserMatches"]
            if match["User"]["UserId"] in user_of
        ]
        self.gathered.users(photo.key, ranking)


@dataclass(frozen=True)
class IdentificationSplit:
    """People enrolled and people kept unknown (a seeded quarter of them, at least one), the
    enrolment photos for one-photo and for user enrolment, and the probes of each."""

    enrolled: set[str]
    unknown: set[str]
    gallery: dict[str, Photo]  # one photo per enrolled person
    one_photo_probes: list[Photo]
    users_enrolment: dict[str, list[Photo]]  # the first half of each person's photos (<= 100)
    users_probes: list[Photo]
    user_of: dict[str, str]  # the UserId each enrolled person is enrolled under


def identification_split(photos: list[Photo], seed: int) -> IdentificationSplit:
    by_person: dict[str, list[Photo]] = {}
    for photo in photos:
        by_person.setdefault(photo.person, []).append(photo)
    people = sorted(by_person)
    order = [people[k] for k in np.random.default_rng(seed).permutation(len(people))]
    unknown_count = max(1, round(len(people) / 4)) if len(people) >= 3 else 0
    unknown = set(order[:unknown_count])
    enrolled = {p for p in order[unknown_count:] if len(by_person[p]) >= 2}
    strangers = [photo for person in sorted(unknown) for photo in by_person[person]]
    gallery = {person: by_person[person][0] for person in enrolled}
    enrolment = {
        person: by_person[person][: min(len(by_person[person]) // 2, MAX_USER_FACES)]
        for person in enrolled
    }
    return IdentificationSplit(
        enrolled=enrolled,
        unknown=unknown,
        gallery=gallery,
        one_photo_probes=[p for p in photos if p.person in enrolled and p is not gallery[p.person]]
        + strangers,
        users_enrolment=enrolment,
        users_probes=[p for p in photos if p.person in enrolled and p not in enrolment[p.person]]
        + strangers,
        user_of={f"person-{n}": person for n, person in enumerate(sorted(enrolled))},
    )


def one_photo_rankings(split: IdentificationSplit, gathered: Gathered) -> dict[str, Ranking]:
    """Each probe's ranking of the enrolled people by its Similarity to their one photo: what
    SearchFacesByImage answers in a collection holding only those photos."""
    rankings = {}
    for probe in split.one_photo_probes:
        scores = [
            (person, gathered.similarity(probe.key, photo.key))
            for person, photo in split.gallery.items()
        ]
        rankings[probe.key] = sorted(scores, key=lambda item: -item[1])
    return rankings


@contextmanager
def temporary_collection(client: Any) -> Iterator[str]:
    """A fresh collection, deleted on the way out however the run ends (Ctrl-C included)."""
    name = f"facebank-evaluate-{uuid.uuid4().hex[:12]}"
    client.create_collection(CollectionId=name)
    try:
        yield name
    finally:
        client.delete_collection(CollectionId=name)
