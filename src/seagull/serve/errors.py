"""Every error the server sends has one JSON shape: ``{"detail": "<what and the fix>", "error": "<kind>"}``.

Client mistakes are 4xx: the package's :class:`~seagull.errors.SeagullError` family (422, 413 for
:class:`~seagull.serve.inputs.RequestTooLarge`), FastAPI's own form validation (422) and Starlette's
HTTP errors (400, 404, 405, 413). A model failure is 500. Any other exception becomes a JSON 500 in
:class:`UnexpectedErrorMiddleware`, which does not re-raise it, so the server keeps the connection
(Starlette's outermost middleware would answer and then re-raise, and uvicorn then drops the
keep-alive connection the client is about to reuse).
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import AnswerParseError, ModelError, SeagullError
from .inputs import RequestTooLarge
from .worker import JobTimeoutError, QueueFullError

log = logging.getLogger("seagull.serve")


def error_body(message: str, kind: str) -> dict[str, str]:
    return {"detail": message, "error": kind}


def error_response(
    status: int, message: str, kind: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(message, kind), status_code=status, headers=headers)


def status_kind(status: int) -> str:
    """``404`` -> ``"NotFound"``: the kind of a plain HTTP error."""
    try:
        return HTTPStatus(status).phrase.title().replace(" ", "").replace("-", "")
    except ValueError:
        return "HTTPError"


def validation_message(errors: list[dict[str, Any]]) -> str:
    """FastAPI's field errors as one line that names each field."""
    parts = []
    for e in errors:
        loc = [str(p) for p in e.get("loc", ())][1:]  # drop "body"/"query"
        field = f"field {'.'.join(loc)!r}" if loc else "the request body"
        if e.get("type") == "missing":
            parts.append(f"{field} is missing: send it as a part of a multipart/form-data body")
            continue
        given = e.get("input")
        got = f" (got {given!r:.80})" if isinstance(given, (str, int, float)) else ""
        parts.append(f"{field}: {e.get('msg', 'invalid')}{got}")
    return "; ".join(parts) or "the request is not valid"


def _multipart_header_limit() -> int:
    try:
        from python_multipart.multipart import DEFAULT_MAX_HEADER_SIZE
    except ImportError:  # older python-multipart: no limit of its own, the part limit applies
        return 0
    return int(DEFAULT_MAX_HEADER_SIZE)


def _header_too_long(e: BaseException) -> bool:
    """Whether the multipart parser failed on a part header over its size limit (in ``e``'s chain;
    Starlette reports every parser error as "Invalid multipart data")."""
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if "maximum header size exceeded" in str(cur).lower():
            return True
        cur = cur.__cause__ or cur.__context__
    return False


def header_too_long_message() -> str:
    limit = _multipart_header_limit()
    size = f" of {limit} bytes" if limit else ""
    return (
        f"a part header of the multipart body is over this server's limit{size}: the upload's file "
        "name is too long; send the file under a shorter name (up to 255 characters)"
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestTooLarge)
    async def _too_large(_: Request, e: RequestTooLarge) -> JSONResponse:
        return error_response(413, str(e), "PayloadTooLarge")

    @app.exception_handler(SeagullError)
    async def _seagull(_: Request, e: SeagullError) -> JSONResponse:
        if isinstance(e, (ModelError, AnswerParseError)):
            # The input was fine; the model failed. Say so instead of blaming the client.
            log.error("model failure: %s", e)
            return error_response(500, f"the model failed on this request: {e}", type(e).__name__)
        return error_response(422, str(e), type(e).__name__)

    @app.exception_handler(QueueFullError)
    async def _busy(_: Request, e: QueueFullError) -> JSONResponse:
        return error_response(503, str(e), "Busy", {"Retry-After": "1"})

    @app.exception_handler(JobTimeoutError)
    async def _timeout(_: Request, e: JobTimeoutError) -> JSONResponse:
        return error_response(504, str(e), "Timeout")

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, e: RequestValidationError) -> JSONResponse:
        return error_response(422, validation_message(list(e.errors())), "ValidationError")

    @app.exception_handler(HTTPException)
    async def _http(_: Request, e: HTTPException) -> Response:
        headers = dict(e.headers or {})
        if e.status_code == 413:
            headers["Connection"] = "close"  # the rest of the body is never read
        if e.status_code < 200 or e.status_code in (204, 304):
            return Response(status_code=e.status_code, headers=headers)
        kind = "PayloadTooLarge" if e.status_code == 413 else status_kind(e.status_code)
        detail = str(e.detail)
        if e.status_code == 400 and _header_too_long(e):
            detail = header_too_long_message()
        return error_response(e.status_code, detail, kind, headers)


class UnexpectedErrorMiddleware:
    """Any exception that no handler took: logged, answered as a JSON 500, and not re-raised."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked_send(msg: Message) -> None:
            nonlocal started
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        try:
            await self.app(scope, receive, tracked_send)
        except Exception as e:
            log.exception("unexpected server error")
            if started:
                raise  # half a response is out: only closing the connection is left
            message = f"internal server error ({type(e).__name__}); see the server log"
            await send_json(send, 500, error_body(message, "Internal"))


async def send_json(send: Send, status: int, body: dict[str, Any], close: bool = False) -> None:
    """A JSON response straight on the ASGI channel (for middleware, outside FastAPI's handlers)."""
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})
