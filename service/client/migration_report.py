"""`facebank migrate`'s report as one self-contained HTML page (no script, no request leaves
it): what moved, what did not and why, and the parity check a team reads before it switches."""

from __future__ import annotations

import html
from typing import Any

from service.client.evaluation_report import STYLE


def write_html(report: dict[str, Any]) -> str:
    body = [
        f"<h1>facebank migrate: {_text(report['collection'])} to "
        f"{_text(report['target_collection'])}</h1>",
        f"<p>From {_text(report['source'])} to {_text(report['target'])} in "
        f"{report['seconds']} s{' (interrupted)' if report['interrupted'] else ''}.</p>",
        _summary(report),
        _parity(report["parity"]),
        _not_moved(report["not_moved"]),
    ]
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        f"<title>facebank migrate</title><style>{STYLE}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )


def _text(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _summary(report: dict[str, Any]) -> str:
    rows = [
        ("faces at the source", report["faces_at_source"]),
        ("faces moved now", report["faces_moved"]),
        ("faces already at the target", report["faces_already_there"]),
        ("faces not moved", len(report["not_moved"])),
        ("users at the source", report["users_at_source"]),
        ("users created", report["users_created"]),
        ("faces associated with their users", report["faces_associated"]),
        ("associations refused", len(report["unassociated"])),
        ("tags", ", ".join(f"{k}={v}" for k, v in sorted(report["tags"].items())) or "none"),
    ]
    cells = "".join(f"<tr><td class=text>{name}</td><td>{_text(v)}</td></tr>" for name, v in rows)
    return f"<h2>Moved</h2><table>{cells}</table>"


def _parity(parity: dict[str, Any]) -> str:
    if not parity or not parity.get("probes"):
        return "<h2>Parity</h2><p>No face reached the target, so nothing was compared.</p>"
    share = parity["share_same_top_match"]
    lines = [
        "<h2>Parity</h2>",
        f"<p>SearchFaces by {parity['probes']} stored faces on both sides: the top match is "
        f"the same FaceId for {parity['same_top_match']} ({share:.0%}). Similarity is each "
        "side's own scale; an app's thresholds may need the target's calibration "
        "(docs/accuracy.md).</p>",
        "<table><tr><th>probe FaceId</th><th>source top match</th><th>Similarity</th>"
        "<th>target top match</th><th>Similarity</th><th>same</th></tr>",
    ]
    for row in parity["rows"]:
        source, target = row["source"], row["target"]
        lines.append(
            f"<tr><td class=text>{_text(row['FaceId'])}</td>"
            f"<td class=text>{_text(source['FaceId'])}</td><td>{_score(source)}</td>"
            f"<td class=text>{_text(target['FaceId'])}</td><td>{_score(target)}</td>"
            f"<td>{'yes' if row['same_top_match'] else '<b class=warn>no</b>'}</td></tr>"
        )
    return "\n".join([*lines, "</table>"])


def _score(match: dict[str, Any]) -> str:
    return "" if match["Similarity"] is None else f"{match['Similarity']:.2f}"


def _not_moved(faces: list[dict[str, Any]]) -> str:
    if not faces:
        return "<h2>Not moved</h2><p>Every face moved.</p>"
    lines = [
        "<h2>Not moved</h2><table><tr><th>FaceId</th><th>ImageId</th><th>ExternalImageId</th>"
        "<th>reason</th><th>detail</th></tr>"
    ]
    for face in faces:
        lines.append(
            "<tr>"
            + "".join(
                f"<td class=text>{_text(face.get(key))}</td>"
                for key in ("FaceId", "ImageId", "ExternalImageId", "reason", "detail")
            )
            + "</tr>"
        )
    return "\n".join([*lines, "</table>"])
