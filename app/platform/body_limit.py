"""A limit on the size of a request's body: 413 beyond it, before the body reaches the disk or
memory. A declared Content-Length over the limit is refused at once; a body sent in chunks is
counted as it arrives and cut off where it passes the limit."""

from __future__ import annotations

import html
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(Exception):
    """The body passed the limit while the app was reading it."""


class BodyLimit:
    """ASGI middleware: bodies of at most `max_bytes`."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, send)
            return
        received = 0
        exceeded = started = refused = False

        async def counted() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise BodyTooLarge
            return message

        async def watched(message: Message) -> None:
            # The app may turn the cut-off into an answer of its own (FastAPI answers 400 to a
            # body it could not read): the 413 goes out instead, unless it already answered.
            nonlocal started, refused
            if exceeded and not started:
                if not refused:
                    refused = True
                    await self._refuse(scope, send)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge:
            if started:  # too late for a status: the connection is dropped instead
                raise
            if not refused:
                await self._refuse(scope, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        megabytes = self.max_bytes / (1 << 20)
        message = (
            f"the request is larger than the limit of {megabytes:,.0f} MB (SIFT_MAX_REQUEST_MB); "
            "import a larger file with `sift import` on the server"
        )
        if scope["path"].startswith("/api/"):
            body, content_type = json.dumps({"error": message}), b"application/json"
        else:
            # Outside the app, so no layout: the element static/errors.js reads for htmx, and a
            # readable page for a plain form.
            body = (
                '<!doctype html><title>Error 413</title><p class="alert alert-error" '
                f'role="alert" data-error-message data-status="413">{html.escape(message)}</p>'
            )
            content_type = b"text/html; charset=utf-8"
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", content_type), (b"connection", b"close")],
            }
        )
        await send({"type": "http.response.body", "body": body.encode()})
