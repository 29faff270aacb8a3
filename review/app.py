"""The review page and the JSON API behind it (scripts and tests use the API directly).

    GET    /                          the page
    GET    /api/queue[?reviewer=R]    {"items": [{"id", "s3_key", "audit": false, "prediction": {"label",
                                       "confidence"}, "inferences", "recorded_at"} or, for a blind audit,
                                       {"id", "s3_key", "audit": true, "recorded_at"}], "left", "labelled",
                                       "classes"}
    GET    /api/items/{id}/image      the image as stored (Content-Type from its bytes)
    POST   /api/items/{id}/label      {"label": "<class name>"} or {"skip": true} (optional "reviewer")
    DELETE /api/items/{id}/label[?reviewer=R]  undo a label (only its author's, when it has one): back in the queue
    POST   /api/items/{id}/claim      {"reviewer": R}: the page shows this image to R alone for a while

Every request passes review.security's checks first (Host allowlist, JSON-only same-origin writes, the token
off loopback); the reviewer recorded on a label is the server's (the queue's identity), and the optional
"reviewer" of a request is the page's session: whose claims, skips and undos they are.

Sync handlers run on Starlette's thread pool and the async ones hand the store's blocking calls to it, so a
slow S3 call never holds up the other reviewers. Errors are JSON, `{"error": "<name>", "message": "..."}`:
404 for an unknown id, 400 for an unknown class or a malformed body, 409 when the image was labelled (or is
being looked at) by someone else, 502 when AWS refused or could not be reached (`AWSRefusedError`,
`AWSUnavailableError`: the message is the CLI's line for that error, e.g. the permission the server's role lacks).
"""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

from PIL import Image
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from common.errors import InputError
from review.queue import ReviewQueue
from review.security import AccessPolicy, RequestGuard
from review.store import ImageMissingError

PAGE = Path(__file__).with_name("page.html")
REVIEWER_LIMIT = 64
LOG = logging.getLogger("review")


class BadRequestError(InputError):
    """The request body is not what the route takes (HTTP 400)."""

    status = 400


def error_response(error: Exception) -> JSONResponse:
    status = int(getattr(error, "status", 404 if isinstance(error, ImageMissingError) else 400))
    return JSONResponse({"error": type(error).__name__, "message": str(error)}, status_code=status)


def aws_error_response(request: Request, error: Exception) -> JSONResponse:
    """An AWS error while serving (the role lacks s3:GetObject on review/, throttling, expired credentials, no
    connection): the page shows its message, and the server logs the same one line instead of a traceback."""
    from botocore.exceptions import ClientError

    from common.aws_errors import explain_aws_error

    name = "AWSRefusedError" if isinstance(error, ClientError) else "AWSUnavailableError"
    message = explain_aws_error(error) or f"{type(error).__name__}: {error}"
    LOG.warning("%s %s: %s: %s", request.method, request.url.path, name, message)
    return JSONResponse({"error": name, "message": message}, status_code=502)


def media_type(data: bytes) -> str:
    """The image's type from its bytes (never from the key's name)."""
    try:
        kind = Image.open(io.BytesIO(data)).format
    except Exception:  # noqa: BLE001 - not an image Pillow knows: let the browser decide
        return "application/octet-stream"
    return Image.MIME.get(kind or "", "application/octet-stream")


def reviewer_of(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= REVIEWER_LIMIT:
        raise BadRequestError(f"reviewer must be a string of 1 to {REVIEWER_LIMIT} characters")
    return value


async def json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError as error:
        raise BadRequestError(f"the body is not JSON: {error}") from error
    if not isinstance(body, dict):
        raise BadRequestError('the body must be a JSON object, e.g. {"label": "bicycle"} or {"skip": true}')
    return body


def create_app(queue: ReviewQueue, policy: AccessPolicy | None = None) -> Starlette:
    """The page and API behind `policy` (default: loopback only, no token)."""
    page = PAGE.read_text()

    async def index(request: Request) -> Response:
        return HTMLResponse(page)

    def queue_view(request: Request) -> Response:
        try:
            reviewer = reviewer_of(request.query_params.get("reviewer"))
            view = queue.view(reviewer)
        except InputError as error:
            return error_response(error)
        items = [{**item.as_api(), **({"claimed_by_other": item.id in view.claimed_by_others} if reviewer else {})}
                 for item in view.items]
        return JSONResponse({"items": items, "left": len(view.items), "labelled": view.labelled,
                             "classes": queue.class_names, "source": queue.store.description})

    def image(request: Request) -> Response:
        try:
            data = queue.image(request.path_params["item_id"])
        except (InputError, ImageMissingError) as error:
            return error_response(error)
        return Response(data, media_type=media_type(data), headers={"Cache-Control": "private, max-age=3600"})

    async def label(request: Request) -> Response:
        identifier = request.path_params["item_id"]
        try:
            body = await json_body(request)
            reviewer = reviewer_of(body.get("reviewer"))
            if body.get("skip") is True and "label" not in body:
                await run_in_threadpool(queue.skip, identifier, reviewer)
                return JSONResponse({"id": identifier, "skipped": True})
            if not isinstance(body.get("label"), str):
                raise BadRequestError('give {"label": "<class name>"} or {"skip": true}; classes: '
                                      + ", ".join(queue.class_names))
            written = await run_in_threadpool(queue.label, identifier, body["label"], reviewer)
        except InputError as error:
            return error_response(error)
        return JSONResponse({"id": identifier, "label": written.class_name, "key": queue.label_key_of(identifier)},
                            status_code=201)

    def undo(request: Request) -> Response:
        identifier = request.path_params["item_id"]
        try:
            queue.undo(identifier, reviewer_of(request.query_params.get("reviewer")))
        except InputError as error:
            return error_response(error)
        return JSONResponse({"id": identifier, "undone": True})

    async def claim(request: Request) -> Response:
        identifier = request.path_params["item_id"]
        try:
            reviewer = reviewer_of((await json_body(request)).get("reviewer"))
            if reviewer is None:
                raise BadRequestError('give {"reviewer": "<your session id>"}')
            await run_in_threadpool(queue.claim, identifier, reviewer)
        except InputError as error:
            return error_response(error)
        return JSONResponse({"id": identifier, "claimed": True, "seconds": queue.claim_seconds})

    from botocore.exceptions import BotoCoreError, ClientError

    aws_errors = {ClientError: aws_error_response, BotoCoreError: aws_error_response}
    return Starlette(middleware=[Middleware(RequestGuard, policy=policy or AccessPolicy())],
                     exception_handlers=aws_errors, routes=[
        Route("/", index),
        Route("/api/queue", queue_view),
        Route("/api/items/{item_id}/image", image),
        Route("/api/items/{item_id}/label", label, methods=["POST"]),
        Route("/api/items/{item_id}/label", undo, methods=["DELETE"]),
        Route("/api/items/{item_id}/claim", claim, methods=["POST"]),
    ])
