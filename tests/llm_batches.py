"""The test LLM server's Batch API, as OpenAI serves it: ``/v1/files`` (upload, retrieve,
content) and ``/v1/batches`` (create, list, retrieve, cancel). A batch is validated, then held
in_progress for its delay (or while held), then each line is answered by the chat endpoint's
own logic (the same answers, counted the same), and its output and error files are written.

Output lines: ``{"id", "custom_id", "response": {"status_code", "request_id", "body"},
"error": null}``; a line answered with an HTTP error goes to the error file with its status,
and a line never answered (a prompt that hangs) makes the batch expire, listed in the error
file with the error ``batch_expired``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

Answer = tuple[int, dict[str, Any], dict[str, str]]
Respond = Callable[[dict[str, Any]], Awaitable[Answer]]
CHAT_URL = "/v1/chat/completions"


class Batches:
    """Files and batches the server holds, and what it did with them."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.held = False
        self.lock = threading.Lock()
        self.files: dict[str, dict[str, Any]] = {}
        self.contents: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.lines_answered = 0
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()

    def new_id(self, prefix: str) -> str:
        with self.lock:
            return f"{prefix}-{next(self._ids):06d}"

    def add_file(self, name: str, data: bytes, purpose: str) -> dict[str, Any]:
        file_id = self.new_id("file")
        entry = {
            "id": file_id,
            "object": "file",
            "bytes": len(data),
            "created_at": int(time.time()),
            "filename": name,
            "purpose": purpose,
            "status": "processed",
        }
        with self.lock:
            self.files[file_id], self.contents[file_id] = entry, data
        return entry

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            statuses = Counter(batch["status"] for batch in self.batches.values())
            return {
                "files_uploaded": sum(f["purpose"] == "batch" for f in self.files.values()),
                "batches_created": len(self.batches),
                "lines_answered": self.lines_answered,
                "statuses": dict(statuses),
            }


def _batch(batches: Batches, file_id: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": batches.new_id("batch"),
        "object": "batch",
        "endpoint": body.get("endpoint", CHAT_URL),
        "errors": None,
        "input_file_id": file_id,
        "completion_window": body.get("completion_window", "24h"),
        "status": "validating",
        "output_file_id": None,
        "error_file_id": None,
        "created_at": int(time.time()),
        "in_progress_at": None,
        "expires_at": int(time.time()) + 86_400,
        "finalizing_at": None,
        "completed_at": None,
        "failed_at": None,
        "expired_at": None,
        "cancelling_at": None,
        "cancelled_at": None,
        "request_counts": {"total": 0, "completed": 0, "failed": 0},
        "metadata": body.get("metadata") or None,
    }


def _validate(batch: dict[str, Any], data: bytes) -> tuple[list[dict[str, Any]], str | None]:
    """The input file's lines, or the first reason it is refused."""
    lines, seen = [], set()
    for number, raw in enumerate(data.decode().splitlines(), 1):
        try:
            line = json.loads(raw)
        except ValueError:
            return [], f"line {number}: not JSON"
        if line.get("url") != batch["endpoint"] or line.get("method") != "POST":
            return [], f"line {number}: url must be POST {batch['endpoint']}"
        if line.get("custom_id") in seen:
            return [], f"line {number}: duplicate custom_id {line.get('custom_id')!r}"
        seen.add(line.get("custom_id"))
        lines.append(line)
    return lines, None


async def _process(batches: Batches, batch: dict[str, Any], respond: Respond) -> None:
    await asyncio.sleep(0.01)
    lines, invalid = _validate(batch, batches.contents[batch["input_file_id"]])
    if invalid:
        batch.update(status="failed", failed_at=int(time.time()))
        batch["errors"] = {
            "object": "list",
            "data": [{"code": "invalid_request", "message": invalid}],
        }
        return
    batch["request_counts"]["total"] = len(lines)
    if batch["status"] != "cancelling":
        batch.update(status="in_progress", in_progress_at=int(time.time()))
    started = time.monotonic()
    while batches.held or time.monotonic() - started < batches.delay_s:
        if batch["status"] == "cancelling":
            break
        await asyncio.sleep(0.02)
    output, errors, expired = [], [], False
    for line in lines:
        if batch["status"] == "cancelling":
            break
        code, body, _ = await respond(line["body"])
        counts = batch["request_counts"]
        entry = {"id": batches.new_id("req"), "custom_id": line["custom_id"], "error": None}
        if code == 0:  # never answered: the batch runs out of its window
            expired = True
            entry |= {"response": None, "error": {"code": "batch_expired", "message": "expired"}}
            errors.append(entry)
            counts["failed"] += 1
            continue
        entry["response"] = {"status_code": code, "request_id": entry["id"], "body": body}
        (output if code == 200 else errors).append(entry)
        counts["completed" if code == 200 else "failed"] += 1
        with batches.lock:
            batches.lines_answered += 1
    cancelled = batch["status"] == "cancelling"
    batch.update(status="finalizing", finalizing_at=int(time.time()))
    for key, entries in (("output_file_id", output), ("error_file_id", errors)):
        if entries:
            data = "".join(json.dumps(entry) + "\n" for entry in entries).encode()
            batch[key] = batches.add_file(f"{batch['id']}-{key}.jsonl", data, "batch_output")["id"]
    now = int(time.time())
    if cancelled:
        batch.update(status="cancelled", cancelled_at=now)
    elif expired:
        batch.update(status="expired", expired_at=now)
    else:
        batch.update(status="completed", completed_at=now)


def _not_found(what: str) -> Response:
    body = {"error": {"message": f"No such {what}", "type": "invalid_request_error"}}
    return JSONResponse(body, status_code=404)


def batch_routes(batches: Batches, respond: Respond) -> list[Route]:
    """The routes of the Batch API over `batches`, answering lines with `respond`."""

    async def upload(request: Request) -> Response:
        form = await request.form()
        upload = form["file"]
        assert not isinstance(upload, str)
        data = await upload.read()
        return JSONResponse(batches.add_file(upload.filename or "", data, str(form["purpose"])))

    async def file(request: Request) -> Response:
        found = batches.files.get(request.path_params["file_id"])
        return JSONResponse(found) if found else _not_found("file")

    async def content(request: Request) -> Response:
        data = batches.contents.get(request.path_params["file_id"])
        return Response(data, media_type="application/jsonl") if data else _not_found("file")

    async def create(request: Request) -> Response:
        body = await request.json()
        if body.get("input_file_id") not in batches.files:
            return _not_found("file")
        batch = _batch(batches, body["input_file_id"], body)
        with batches.lock:
            batches.batches[batch["id"]] = batch
        task = asyncio.get_running_loop().create_task(_process(batches, batch, respond))
        batches._tasks.add(task)
        task.add_done_callback(batches._tasks.discard)
        return JSONResponse(batch)

    async def listing(_request: Request) -> Response:
        with batches.lock:
            data = sorted(batches.batches.values(), key=lambda b: b["id"], reverse=True)
        first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
        page = {"object": "list", "data": data, "first_id": first, "last_id": last}
        return JSONResponse(page | {"has_more": False})

    async def retrieve(request: Request) -> Response:
        found = batches.batches.get(request.path_params["batch_id"])
        return JSONResponse(found) if found else _not_found("batch")

    async def cancel(request: Request) -> Response:
        found = batches.batches.get(request.path_params["batch_id"])
        if found is None:
            return _not_found("batch")
        if found["status"] in ("validating", "in_progress"):
            found.update(status="cancelling", cancelling_at=int(time.time()))
        return JSONResponse(found)

    async def stats(_request: Request) -> Response:
        return JSONResponse(batches.snapshot())

    async def hold(request: Request) -> Response:
        batches.held = (await request.json()).get("held", True)
        return JSONResponse({"held": batches.held})

    return [
        Route("/v1/files", upload, methods=["POST"]),
        Route("/v1/files/{file_id}", file, methods=["GET"]),
        Route("/v1/files/{file_id}/content", content, methods=["GET"]),
        Route("/v1/batches", create, methods=["POST"]),
        Route("/v1/batches", listing, methods=["GET"]),
        Route("/v1/batches/{batch_id}", retrieve, methods=["GET"]),
        Route("/v1/batches/{batch_id}/cancel", cancel, methods=["POST"]),
        Route("/_batches", stats, methods=["GET"]),
        Route("/_batches/hold", hold, methods=["POST"]),
    ]
