"""`facebank evaluate`'s run and report: gather the scores (evaluation_gather.py), then
FMR/FNMR per threshold with their intervals, identification, the photos without a usable
face; written as JSON and as one self-contained HTML page, and summed up on the terminal."""

from __future__ import annotations

import html
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ml.evaluation.identification import closed_set, open_set
from ml.evaluation.statistics import error_rates, grouped_warnings, interval, percent
from service.client.evaluation_gather import (
    Gatherer,
    IdentificationSplit,
    Photo,
    Plan,
    identification_split,
    one_photo_rankings,
    photos_in,
    rekognition,
    temporary_collection,
)
from service.client.gathered import FACE, Gathered

DEFAULT_THRESHOLDS = (50.0, 70.0, 80.0, 90.0, 95.0, 99.0)


class EvaluationError(ValueError):
    """The folder or the options cannot give an evaluation."""


@dataclass(frozen=True)
class EvaluationRequest:
    folder: Path
    endpoint: str | None  # None: Amazon Rekognition's own endpoint for the region
    region: str
    out: Path
    collection_free: bool
    thresholds: list[float]  # besides DEFAULT_THRESHOLDS
    max_genuine: int
    max_impostor: int
    seed: int
    concurrency: int
    progress: bool


def evaluate(request: EvaluationRequest) -> dict[str, Any]:
    request = replace(request, thresholds=sorted({*DEFAULT_THRESHOLDS, *request.thresholds}))
    photos = photos_in(request.folder)
    if len({p.person for p in photos}) < 2:
        raise EvaluationError(
            f"{request.folder} needs photos of at least two people as <person>/<photo> files"
        )
    plan = Plan(
        photos,
        request.max_genuine,
        request.max_impostor,
        request.seed,
        request.concurrency,
        request.progress,
    )
    gathered = Gathered.open(request.out / "gathered.jsonl", identity(request))
    gatherer = Gatherer(rekognition(request.endpoint, request.region), plan, gathered)
    if request.collection_free:
        gatherer.compare_all()
    elif not all_gathered(gatherer):
        with temporary_collection(gatherer.client) as collection:
            gatherer.search_all(collection, with_users=True)
    report, scores = build_report(request, gatherer)
    write_report(request.out, report, scores)
    return report


def identity(request: EvaluationRequest) -> dict[str, Any]:
    """What gathered scores belong to: a re-run with another of these starts afresh."""
    return {
        "endpoint": request.endpoint or f"aws:{request.region}",
        "folder": str(request.folder.resolve()),
        "mode": "compare" if request.collection_free else "collection",
        "seed": request.seed,
        "max_pairs": [request.max_genuine, request.max_impostor],
    }


def all_gathered(gatherer: Gatherer) -> bool:
    statuses = gatherer.gathered.statuses
    if any(photo.key not in statuses for photo in gatherer.plan.photos):
        return False
    usable = gatherer.usable()
    if any(photo.key not in gatherer.gathered.searches for photo in usable):
        return False
    split = identification_split(usable, gatherer.plan.seed)
    return all(photo.key in gatherer.gathered.user_rankings for photo in split.users_probes)


Scores = dict[str, list[float]]  # the genuine and the impostor pairs' Similarity, for plots


def build_report(request: EvaluationRequest, gatherer: Gatherer) -> tuple[dict[str, Any], Scores]:
    gathered = gatherer.gathered
    genuine_pairs, impostor_pairs = gatherer.pairs()
    genuine = np.array([gathered.similarity(a.key, b.key) for a, b in genuine_pairs])
    impostor = np.array([gathered.similarity(a.key, b.key) for a, b in impostor_pairs])
    usable = gatherer.usable()
    report = {
        "endpoint": request.endpoint or f"Amazon Rekognition ({request.region})",
        "mode": "CompareFaces" if request.collection_free else "IndexFaces + SearchFaces",
        "folder": str(request.folder),
        "created": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "seed": request.seed,
        "photos": len(gatherer.plan.photos),
        "people": len({p.person for p in gatherer.plan.photos}),
        "usable_photos": len(usable),
        "scores_reused": gathered.reused,
        "not_found": [
            {"photo": photo.key, "reason": status, "detail": detail}
            for photo in gatherer.plan.photos
            for status, detail in [gathered.statuses.get(photo.key, ("not reached", ""))]
            if status != FACE
        ],
        "verification": {
            "genuine_pairs": len(genuine),
            "impostor_pairs": len(impostor),
            "thresholds": error_rates(genuine, impostor, request.thresholds)
            if len(genuine) and len(impostor)
            else [],
        },
        "identification": identification(request, gatherer),
    }
    return report, {"genuine": genuine.tolist(), "impostor": impostor.tolist()}


def identification(request: EvaluationRequest, gatherer: Gatherer) -> dict[str, Any]:
    if request.collection_free:
        return {"skipped": "identification needs a collection; run without --collection-free"}
    split = identification_split(gatherer.usable(), request.seed)
    if not split.enrolled or not split.unknown:
        return {"skipped": "needs at least 3 people, 2 of them with 2 usable photos or more"}
    one_photo = one_photo_rankings(split, gatherer.gathered)
    users = gatherer.gathered.user_rankings
    return {
        "enrolled_people": len(split.enrolled),
        "unknown_people": len(split.unknown),
        "one_photo_per_person": ranked_results(split, split.one_photo_probes, one_photo, request),
        "users": ranked_results(split, split.users_probes, users, request),
    }


def ranked_results(
    split: IdentificationSplit,
    probes: list[Photo],
    rankings: dict[str, list[tuple[str, float]]],
    request: EvaluationRequest,
) -> dict[str, Any]:
    known = [(p.person, rankings[p.key]) for p in probes if p.person in split.enrolled]
    unknown = [rankings[p.key] for p in probes if p.person in split.unknown]
    return {
        "closed_set": closed_set(known),
        "open_set": open_set(known, unknown, request.thresholds),
    }


def write_report(out: Path, report: dict[str, Any], scores: Scores) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "report.html").write_text(html_page(report, scores))


def terminal_table(report: dict[str, Any]) -> str:
    verification = report["verification"]
    lines = [
        f"{report['endpoint']}: {report['usable_photos']} of {report['photos']} photos usable, "
        f"{verification['genuine_pairs']} genuine and {verification['impostor_pairs']} "
        "impostor pairs",
        f"{'Similarity':>10}  {'FMR':>8}  {'95% CI':>15}  {'FNMR':>8}  {'95% CI':>15}",
    ]
    for row in verification["thresholds"]:
        lines.append(
            f"{row['threshold']:>10.1f}  {percent(row['fmr']):>8}  "
            f"{interval(row['fmr_ci95']):>15}  {percent(row['fnmr']):>8}  "
            f"{interval(row['fnmr_ci95']):>15}"
        )
    lines += [f"warning {text}" for text in grouped_warnings(verification["thresholds"])]
    identified = report["identification"]
    for name in ("one_photo_per_person", "users"):
        if name in identified and identified[name]["closed_set"]:
            rank1 = identified[name]["closed_set"]["rank1"]
            lines.append(f"identification ({name.replace('_', ' ')}): rank-1 {percent(rank1)}")
    if report["not_found"]:
        lines.append(f"{len(report['not_found'])} photos without one usable face (see report)")
    return "\n".join(lines)


STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222 }
table { border-collapse: collapse; margin: 1em 0 } td, th { border: 1px solid #bbb;
padding: 3px 8px; text-align: right } th { background: #eee } td.text { text-align: left }
.warn { color: #a40 } figure { display: inline-block; margin: 0 1em 1em 0 } svg { height: auto }
"""


def html_page(report: dict[str, Any], scores: Scores) -> str:
    from ml.evaluation.plots import svg_figures

    genuine, impostor = np.array(scores["genuine"]), np.array(scores["impostor"])
    figures: list[str] = []
    plots_note = ""
    try:
        if len(genuine) and len(impostor):
            figures = svg_figures(genuine, impostor)
    except ModuleNotFoundError:
        plots_note = "<p>Plots need matplotlib: pip install 'facebank[evaluate]'.</p>"
    body = [
        f"<h1>Face verification on {html.escape(report['folder'])}</h1>",
        f"<p>Endpoint: {html.escape(report['endpoint'])} ({html.escape(report['mode'])}). "
        f"{report['photos']} photos of {report['people']} people, {report['usable_photos']} "
        f"with one usable face. Created {html.escape(report['created'])}; seed "
        f"{report['seed']}.</p>",
        "<h2>Verification: error rates by Similarity threshold</h2>",
        verification_table(report["verification"]),
        *[f"<figure>{svg[svg.index('<svg') :]}</figure>" for svg in figures],
        plots_note,
        "<h2>Identification</h2>",
        identification_html(report["identification"]),
        "<h2>Photos without one usable face</h2>",
        not_found_html(report["not_found"]),
    ]
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>facebank evaluate</title><style>{STYLE}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )


def verification_table(verification: dict[str, Any]) -> str:
    rows = [
        "<table><tr><th>Similarity</th><th>FMR</th><th>95% CI</th><th>false matches</th>"
        "<th>impostor pairs</th><th>FNMR</th><th>95% CI</th><th>false non-matches</th>"
        "<th>genuine pairs</th></tr>"
    ]
    for row in verification["thresholds"]:
        rows.append(
            f"<tr><td>{row['threshold']:g}</td><td>{percent(row['fmr'])}</td>"
            f"<td>{interval(row['fmr_ci95'])}</td><td>{row['false_matches']:.0f}</td>"
            f"<td>{row['impostor_pairs']}</td><td>{percent(row['fnmr'])}</td>"
            f"<td>{interval(row['fnmr_ci95'])}</td><td>{row['false_non_matches']:.0f}</td>"
            f"<td>{row['genuine_pairs']}</td></tr>"
        )
    warnings = [
        f'<li class="warn">{html.escape(text[0].upper() + text[1:])}</li>'
        for text in grouped_warnings(verification["thresholds"])
    ]
    return "".join(rows) + "</table>" + (f"<ul>{''.join(warnings)}</ul>" if warnings else "")


def identification_html(identified: dict[str, Any]) -> str:
    if "skipped" in identified:
        return f"<p>{html.escape(identified['skipped'])}</p>"
    parts = [
        f"<p>{identified['enrolled_people']} people enrolled, {identified['unknown_people']} "
        "kept unknown (their photos are open-set probes).</p>"
    ]
    for name, title in (
        ("one_photo_per_person", "One photo per person (SearchFaces)"),
        ("users", "Users with AssociateFaces, half of each person's photos (SearchUsers)"),
    ):
        result = identified[name]
        closed = result["closed_set"]
        parts.append(
            f"<h3>{title}</h3><p>Rank-1 {percent(closed.get('rank1', float('nan')))} over "
            f"{closed.get('probes', 0)} probes of enrolled people.</p>"
        )
        rows = [
            "<table><tr><th>Similarity</th><th>identified (DIR)</th><th>95% CI</th>"
            "<th>unknown accepted (FPIR)</th><th>95% CI</th></tr>"
        ]
        for row in result["open_set"]:
            rows.append(
                f"<tr><td>{row['threshold']:g}</td><td>{percent(row['dir'])}</td>"
                f"<td>{interval(row['dir_ci95'])}</td><td>{percent(row['fpir'])}</td>"
                f"<td>{interval(row['fpir_ci95'])}</td></tr>"
            )
        parts.append("".join(rows) + "</table>")
    return "".join(parts)


def not_found_html(not_found: list[dict[str, str]]) -> str:
    if not not_found:
        return "<p>None.</p>"
    rows = "".join(
        f'<tr><td class="text">{html.escape(item["photo"])}</td>'
        f'<td class="text">{html.escape(item["reason"])}</td>'
        f'<td class="text">{html.escape(item["detail"])}</td></tr>'
        for item in not_found
    )
    return f"<table><tr><th>photo</th><th>reason</th><th>detail</th></tr>{rows}</table>"
