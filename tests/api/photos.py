"""Real photos the API tests use, read by path from ../shared/faces."""

from __future__ import annotations

from pathlib import Path


def first_photo(faces_dir: Path, person: str, split: str = "train") -> bytes:
    folder = faces_dir / "five-celebrities" / split / person
    return sorted(folder.iterdir())[0].read_bytes()


def multiface(faces_dir: Path) -> bytes:
    return (faces_dir / "facenet-pytorch/multiface.jpg").read_bytes()
