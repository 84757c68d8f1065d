"""The console's pages and actions. Every read and every action goes through the operation
table (`Operations.dispatch`), as the signed-in key, with the request's facts for its policy's
conditions: the console can never do what the key could not do through the API, and a refusal
shows AWS's message."""

from __future__ import annotations

import base64
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from ml.similarity import published_rates
from service import errors
from service.http.console.session import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    SESSION_S,
    ConsoleSession,
    Sessions,
    SignInLimiter,
    check_secret,
    same_token,
)
from service.http.observe import log_refusal, new_request_id
from service.http.plumbing import request_facts
from service.http.state import AppState, app_state
from service.operations import console_reads
from service.operations.console_reads import Caller

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters["when"] = lambda epoch: (
    time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(float(epoch))) if epoch else ""
)
router = APIRouter(prefix="/console", include_in_schema=False)
FACES_PER_PAGE = 50
DEFAULT_THRESHOLD = 80.0


class SignInNeededError(Exception):
    """The request has no valid session while the server has keys: a page answers with the
    sign-in page (`signed_out`, installed as the app's handler for it)."""


async def signed_out(request: Request, _: Exception) -> Response:
    return back("")


def _console(request: Request) -> tuple[AppState, Sessions, SignInLimiter]:
    state = app_state(request)
    console = request.app.state.facebank_console
    return state, console.sessions, console.limiter


def session_of(request: Request) -> ConsoleSession:
    state, sessions, _ = _console(request)
    if not state.keyring.configured:  # loopback only, as the API
        token = request.cookies.get(CSRF_COOKIE)
        if not token:
            token = request.state.new_csrf = secrets.token_urlsafe(24)
        return ConsoleSession(None, token)
    found = sessions.read(request.cookies.get(SESSION_COOKIE), state.keyring)
    if found is None:
        raise SignInNeededError
    return found


def caller_of(request: Request, session: ConsoleSession) -> Caller:
    return Caller(session.key, request_facts(request))


async def act(request: Request, session: ConsoleSession, operation: str, body: Any) -> Any:
    """One operation through the table, as the session's key."""
    state = app_state(request)
    return await run_in_threadpool(
        state.running().dispatch, operation, body, session.key, request_facts(request)
    )


def render(
    request: Request, session: ConsoleSession, name: str, status: int = 200, **values: Any
) -> Response:
    response = templates.TemplateResponse(
        request,
        name,
        {
            "csrf": session.csrf,
            "key_id": session.key.key_id if session.key else None,
            "signed": app_state(request).keyring.configured,
            **values,
        },
        status_code=status,
    )
    _security_headers(response)
    new_csrf = getattr(request.state, "new_csrf", None)
    if new_csrf:  # a server without keys: the page's first visit
        _cookie(request, response, CSRF_COOKIE, new_csrf, SESSION_S)
    return response


def _security_headers(response: Response) -> None:
    # Nothing the page loads may come from elsewhere; it may not be framed by another site.
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"


def _cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


async def checked_form(request: Request, session: ConsoleSession) -> dict[str, Any]:
    """The form's fields, once its CSRF token is the session's (a cross-site post has none)."""
    form = await request.form()
    sent = form.get("csrf")
    if not isinstance(sent, str) or not same_token(sent, session.csrf) or not _same_origin(request):
        raise errors.AccessDeniedError("The form's CSRF token is missing or wrong: reload the page")
    return {key: value for key, value in form.multi_items()}


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    return origin is None or origin == f"{request.url.scheme}://{request.url.netloc}"


def refusal(request: Request, session: ConsoleSession, error: errors.ServiceError) -> Response:
    return render(request, session, "refused.html", status=error.rest_status, error=error)


def back(path: str, **query: str) -> RedirectResponse:
    return RedirectResponse(f"/console{path}" + (f"?{urlencode(query)}" if query else ""), 303)


# Sign-in and out


@router.get("")
async def overview(request: Request) -> Response:
    try:
        session = session_of(request)
    except SignInNeededError:
        return sign_in_page(request)
    state = app_state(request)
    try:
        listed = await act(request, session, "ListCollections", {})
        model = state.running().context.pipeline
        collections = await _described(request, session, listed["CollectionIds"])
    except errors.ServiceError as error:
        return refusal(request, session, error)
    try:
        processors = await act(request, session, "ListStreamProcessors", {})
    except errors.AccessDeniedError:
        processors = {"StreamProcessors": []}  # this key may not list them
    jobs = await run_in_threadpool(
        console_reads.video_jobs, state.running().context, caller_of(request, session)
    )
    return render(
        request,
        session,
        "overview.html",
        model=model,
        precision=model.embedder_precision,
        device=state.settings.device,
        calibration_source=state.calibration_source,
        collections=collections,
        processors=_count_by(processors["StreamProcessors"], "Status"),
        jobs=_count_by(jobs, "Status"),
        outcomes=_refusals_and_errors(state),
    )


def sign_in_page(request: Request, message: str = "", status: int = 200) -> Response:
    token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
    response = render(
        request, ConsoleSession(None, token), "signin.html", status=status, message=message
    )
    _cookie(request, response, CSRF_COOKIE, token, SESSION_S)
    return response


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    state, sessions, limiter = _console(request)
    if not state.keyring.configured:
        return back("")
    form = await request.form()
    key_id, secret = str(form.get("key_id", "")), str(form.get("secret", ""))
    client = request.client.host if request.client else "unknown"
    csrf_ok = same_token(str(form.get("csrf", "")), request.cookies.get(CSRF_COOKIE))
    if not csrf_ok or not _same_origin(request):
        return sign_in_page(request, "The form expired: sign in again.", status=403)
    wait = limiter.refused_for(client)
    if wait:
        message = f"Too many failed sign-ins from {client}: try again in {wait:.0f} s."
        _log_failed(key_id, message)
        return sign_in_page(request, message, status=429)
    key = check_secret(state.keyring, key_id, secret)
    if key is None:
        limiter.failed(client)
        _log_failed(key_id, "the access key or its secret is wrong")
        return sign_in_page(request, "The access key or its secret is wrong.", status=401)
    value, _ = sessions.issue(key)
    response = back("")
    _cookie(request, response, SESSION_COOKIE, value, SESSION_S)
    return response


def _log_failed(key_id: str, why: str) -> None:
    error = errors.UnrecognizedClientError(f"Console sign-in refused: {why}")
    log_refusal(new_request_id(), "/console/sign-in", key_id or None, error)


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    try:
        session = session_of(request)
        await checked_form(request, session)
    except (SignInNeededError, errors.ServiceError):
        pass
    response = back("")
    response.delete_cookie(SESSION_COOKIE, path="/console")
    return response


# Collections


@router.get("/collections")
async def collections_page(request: Request) -> Response:
    session = session_of(request)  # or SignInNeededError: to the sign-in page
    try:
        listed = await act(request, session, "ListCollections", {})
        collections = await _described(request, session, listed["CollectionIds"], tags=True)
    except errors.ServiceError as error:
        return refusal(request, session, error)
    return render(request, session, "collections.html", collections=collections)


async def _described(
    request: Request, session: ConsoleSession, ids: list[str], tags: bool = False
) -> list[dict[str, Any]]:
    found = []
    for collection_id in ids:
        try:
            described = await act(
                request, session, "DescribeCollection", {"CollectionId": collection_id}
            )
        except errors.AccessDeniedError:
            continue  # listed, but this key may not look inside
        row = {"CollectionId": collection_id, **described, "Tags": {}}
        if tags:
            arn = {"ResourceArn": described["CollectionARN"]}
            try:
                row["Tags"] = (await act(request, session, "ListTagsForResource", arn))["Tags"]
            except errors.AccessDeniedError:
                row["Tags"] = None
        found.append(row)
    return found


@router.post("/collections")
async def create_collection(request: Request) -> Response:
    return await _action(request, _create_collection)


async def _create_collection(
    request: Request, session: ConsoleSession, form: dict[str, Any]
) -> Response:
    body: dict[str, Any] = {"CollectionId": str(form.get("collection_id", "")).strip()}
    tags = _tags(str(form.get("tags", "")))
    if tags:
        body["Tags"] = tags
    await act(request, session, "CreateCollection", body)
    return back(f"/collections/{body['CollectionId']}")


def _tags(text: str) -> dict[str, str]:
    """`team=doors, site=hq` as tags."""
    found = {}
    for part in text.split(","):
        key, _, value = part.partition("=")
        if key.strip():
            found[key.strip()] = value.strip()
    return found


async def _action(request: Request, run: Any) -> Response:
    """A form post: signed in, its CSRF token checked, then the action, whose refusal shows
    AWS's message."""
    session = session_of(request)  # or SignInNeededError: to the sign-in page
    try:
        form = await checked_form(request, session)
        response: Response = await run(request, session, form)
        return response
    except errors.ServiceError as error:
        return refusal(request, session, error)


@router.get("/collections/{collection_id}")
async def collection_page(request: Request, collection_id: str) -> Response:
    session = session_of(request)  # or SignInNeededError: to the sign-in page
    query = request.query_params
    state = app_state(request)
    context, caller = state.running().context, caller_of(request, session)
    try:
        after = int(query.get("after", "0"))
    except ValueError:
        after = 0
    external, user = query.get("external", ""), query.get("user", "")
    try:
        described = await act(
            request, session, "DescribeCollection", {"CollectionId": collection_id}
        )
        page = await run_in_threadpool(
            console_reads.faces_page,
            context,
            caller,
            collection_id,
            after,
            FACES_PER_PAGE,
            external,
            user,
        )
        users = await run_in_threadpool(
            console_reads.users_with_counts, context, caller, collection_id
        )
    except errors.ServiceError as error:
        return refusal(request, session, error)
    return render(
        request,
        session,
        "collection.html",
        collection_id=collection_id,
        described=described,
        faces=page.faces,
        next_page=None
        if page.next_after is None
        else f"?{urlencode({'after': page.next_after, 'external': external, 'user': user})}",
        external=external,
        user=user,
        users=users,
    )


@router.get("/collections/{collection_id}/delete")
async def confirm_delete(request: Request, collection_id: str) -> Response:
    session = session_of(request)  # or SignInNeededError: to the sign-in page
    try:
        described = await act(
            request, session, "DescribeCollection", {"CollectionId": collection_id}
        )
    except errors.ServiceError as error:
        return refusal(request, session, error)
    return render(
        request, session, "confirm_delete.html", collection_id=collection_id, described=described
    )


@router.post("/collections/{collection_id}/delete")
async def delete_collection(request: Request, collection_id: str) -> Response:
    async def run(request: Request, session: ConsoleSession, form: dict[str, Any]) -> Response:
        if form.get("confirm") != collection_id:
            raise errors.InvalidParameterError(
                f"Type the collection's id ({collection_id}) to confirm its deletion"
            )
        await act(request, session, "DeleteCollection", {"CollectionId": collection_id})
        return back("/collections")

    return await _action(request, run)


@router.post("/collections/{collection_id}/tags")
async def tag_collection(request: Request, collection_id: str) -> Response:
    async def run(request: Request, session: ConsoleSession, form: dict[str, Any]) -> Response:
        described = await act(
            request, session, "DescribeCollection", {"CollectionId": collection_id}
        )
        tags = _tags(str(form.get("tags", "")))
        if tags:
            arn = described["CollectionARN"]
            await act(request, session, "TagResource", {"ResourceArn": arn, "Tags": tags})
        return back("/collections")

    return await _action(request, run)


@router.post("/collections/{collection_id}/faces/delete")
async def delete_face(request: Request, collection_id: str) -> Response:
    async def run(request: Request, session: ConsoleSession, form: dict[str, Any]) -> Response:
        body = {"CollectionId": collection_id, "FaceIds": [str(form.get("face_id", ""))]}
        answer = await act(request, session, "DeleteFaces", body)
        refused = answer.get("UnsuccessfulFaceDeletions", [])
        if refused:
            reasons = ", ".join(refused[0]["Reasons"])
            raise errors.InvalidParameterError(f"The face was not deleted: {reasons}")
        return back(f"/collections/{collection_id}")

    return await _action(request, run)


@router.post("/collections/{collection_id}/users/{user_id}/disassociate")
async def disassociate(request: Request, collection_id: str, user_id: str) -> Response:
    async def run(request: Request, session: ConsoleSession, form: dict[str, Any]) -> Response:
        body = {
            "CollectionId": collection_id,
            "UserId": user_id,
            "FaceIds": [str(form.get("face_id", ""))],
        }
        await act(request, session, "DisassociateFaces", body)
        return back(f"/collections/{collection_id}")

    return await _action(request, run)


@router.post("/collections/{collection_id}/users/{user_id}/delete")
async def delete_user(request: Request, collection_id: str, user_id: str) -> Response:
    async def run(request: Request, session: ConsoleSession, form: dict[str, Any]) -> Response:
        await act(
            request, session, "DeleteUser", {"CollectionId": collection_id, "UserId": user_id}
        )
        return back(f"/collections/{collection_id}")

    return await _action(request, run)


# Try a photo: the page sends each photo with a script call and draws the answer; the
# photo itself never leaves the browser's memory but for that call.


@router.get("/try")
async def try_page(request: Request) -> Response:
    session = session_of(request)  # or SignInNeededError: to the sign-in page
    try:
        listed = await act(request, session, "ListCollections", {})
    except errors.ServiceError:
        listed = {"CollectionIds": []}
    return render(
        request,
        session,
        "try.html",
        collections=listed["CollectionIds"],
        threshold=DEFAULT_THRESHOLD,
    )


TRY_OPERATIONS = {
    "detect": "DetectFaces",
    "compare": "CompareFaces",
    "search": "SearchFacesByImage",
    "search-users": "SearchUsersByImage",
    "index": "IndexFaces",
}


@router.post("/try/{what}")
async def try_call(request: Request, what: str) -> Response:
    try:
        session = session_of(request)
    except SignInNeededError:
        return JSONResponse({"code": "SignInNeeded", "message": "Sign in again"}, status_code=401)
    operation = TRY_OPERATIONS.get(what)
    try:
        sent = request.headers.get("x-csrf-token")
        if not same_token(sent, session.csrf) or not _same_origin(request):
            raise errors.AccessDeniedError("The page's CSRF token is missing or wrong: reload it")
        if operation is None:
            raise errors.InvalidParameterError(f"Nothing to try called {what}")
        body = await _try_body(request, operation)
        answer = await act(request, session, operation, body)
    except errors.ServiceError as error:
        body = {"code": error.code, "message": error.message}
        return JSONResponse(body, status_code=error.rest_status)
    return JSONResponse({"operation": operation, "answer": answer})


async def _try_body(request: Request, operation: str) -> dict[str, Any]:
    form = await request.form()
    body: dict[str, Any] = {}
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            body[name] = {"Bytes": base64.b64encode(await value.read()).decode()}
        elif value != "":
            body[name] = _typed(name, value)
    if operation == "DetectFaces":
        body["Attributes"] = ["ALL"]
    return body


def _typed(name: str, value: str) -> Any:
    if name in ("FaceMatchThreshold", "SimilarityThreshold", "UserMatchThreshold"):
        try:
            return float(value)
        except ValueError:
            raise errors.InvalidParameterError(f"{name} must be a number") from None
    if name in ("MaxFaces", "MaxUsers"):
        return int(value) if value.isdigit() else value
    return value


# Video jobs and cameras


@router.get("/video")
async def video_page(request: Request) -> Response:
    session = session_of(request)  # or SignInNeededError: to the sign-in page
    state = app_state(request)
    jobs = await run_in_threadpool(
        console_reads.video_jobs, state.running().context, caller_of(request, session)
    )
    return render(request, session, "video.html", jobs=jobs)


@router.get("/video/{job_id}")
async def video_job(request: Request, job_id: str) -> Response:
    session = session_of(request)  # or SignInNeededError: to the sign-in page
    state = app_state(request)
    try:
        job = await run_in_threadpool(
            console_reads.video_job, state.running().context, caller_of(request, session), job_id
        )
        answer = await _job_results(request, session, job)
    except errors.ServiceError as error:
        return refusal(request, session, error)
    return render(request, session, "video_job.html", job=job, timeline=_timeline(job, answer))


async def _job_results(request: Request, session: ConsoleSession, job: dict[str, Any]) -> Any:
    pages: list[Any] = []
    token = None
    while len(pages) < 20:
        body = {
            "JobId": job["JobId"],
            "MaxResults": 1000,
            **({"NextToken": token} if token else {}),
        }
        page = await act(request, session, job["Get"], body)
        pages.append(page)
        token = page.get("NextToken")
        if not token:
            break
    return pages


def _timeline(job: dict[str, Any], pages: list[Any]) -> dict[str, Any]:
    """Who was found when: per person (a matched ExternalImageId, else the person's index),
    the timestamps they were seen at, on the video's length."""
    duration = max(1, int((job.get("Metadata") or {}).get("DurationMillis") or 1))
    rows: dict[str, list[int]] = {}
    for page in pages:
        for item in page.get("Persons", []) + page.get("Faces", []):
            timestamp = int(item.get("Timestamp", 0))
            matches = item.get("FaceMatches") or []
            if matches:
                face = matches[0]["Face"]
                name = face.get("UserId") or face.get("ExternalImageId") or face.get("FaceId", "?")
            elif "Person" in item:
                name = f"unknown person {item['Person'].get('Index', '?')}"
            else:
                name = "faces"
            duration = max(duration, timestamp)
            rows.setdefault(name, []).append(timestamp)
    people = [
        {
            "name": name,
            "marks": [round(100 * t / duration, 2) for t in sorted(stamps)],
            "first": min(stamps),
            "last": max(stamps),
        }
        for name, stamps in sorted(rows.items())
    ]
    return {"duration_ms": duration, "people": people}


@router.get("/cameras")
async def cameras_page(request: Request) -> Response:
    session = session_of(request)  # or SignInNeededError: to the sign-in page
    try:
        processors = await _processors(request, session)
    except errors.ServiceError as error:
        return refusal(request, session, error)
    return render(request, session, "cameras.html", processors=processors)


@router.get("/cameras.json")
async def cameras_json(request: Request) -> Response:
    try:
        session = session_of(request)
        processors = await _processors(request, session)
    except SignInNeededError:
        return JSONResponse({"code": "SignInNeeded"}, status_code=401)
    except errors.ServiceError as error:
        return JSONResponse({"code": error.code, "message": error.message}, status_code=403)
    return JSONResponse({"processors": processors, "at": time.time()})


async def _processors(request: Request, session: ConsoleSession) -> list[dict[str, Any]]:
    listed = await act(request, session, "ListStreamProcessors", {})
    processors = app_state(request).processors
    running = {stats.name: stats for stats in (processors.stats() if processors else [])}
    found = []
    for item in listed["StreamProcessors"]:
        described = await act(request, session, "DescribeStreamProcessor", {"Name": item["Name"]})
        stats = running.get(item["Name"])
        found.append(
            {
                "Name": item["Name"],
                "Status": described["Status"],
                "StatusMessage": described.get("StatusMessage", ""),
                "CollectionId": described["Settings"]["FaceSearch"]["CollectionId"],
                "here": stats is not None,
                "connected": bool(stats and stats.camera.connected),
                "frames_analysed": stats.frames_analysed if stats else None,
                "records": stats.records_written if stats else None,
                "latency_s": round(stats.latency_sum / stats.latency_count, 2)
                if stats and stats.latency_count
                else None,
                "latest": list(stats.latest) if stats else [],
            }
        )
    return found


@router.post("/cameras/{name}/{what}")
async def start_or_stop(request: Request, name: str, what: str) -> Response:
    async def run(request: Request, session: ConsoleSession, form: dict[str, Any]) -> Response:
        operation = {"start": "StartStreamProcessor", "stop": "StopStreamProcessor"}.get(what)
        if operation is None:
            raise errors.InvalidParameterError(f"A processor can be started or stopped, not {what}")
        await act(request, session, operation, {"Name": name})
        return back("/cameras")

    return await _action(request, run)


# Thresholds


@router.get("/thresholds")
async def thresholds_page(request: Request) -> Response:
    session = session_of(request)  # or SignInNeededError: to the sign-in page
    pipeline = app_state(request).running().context.pipeline
    calibration = pipeline.calibration
    return render(
        request,
        session,
        "thresholds.html",
        calibration=calibration,
        curve=_curve(calibration.cosines, calibration.similarities),
        rates=published_rates(calibration),
        marked=(50.0, 80.0, 90.0, 99.0),
    )


def _curve(cosines: tuple[float, ...], similarities: tuple[float, ...]) -> str:
    """SVG polyline points: cosine -1..1 across 0..400, Similarity 0..100 up 200..0."""
    return " ".join(
        f"{(c + 1) * 200:.1f},{200 - s * 2:.1f}" for c, s in zip(cosines, similarities, strict=True)
    )


def _count_by(items: list[dict[str, Any]], key: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[str(item[key])] = counts.get(str(item[key]), 0) + 1
    return counts


def _refusals_and_errors(state: AppState) -> list[tuple[str, str, float]]:
    """Requests answered with an error since start, by operation and outcome (the counter
    /metrics has), the largest first."""
    found = []
    for family in state.metrics.collect():
        if family.name != "facebank_requests":
            continue
        for sample in family.samples:
            outcome = sample.labels.get("outcome")
            if sample.name.endswith("_total") and outcome and outcome != "ok" and sample.value:
                found.append((sample.labels["operation"], outcome, sample.value))
    return sorted(found, key=lambda row: -row[2])[:20]
