"""Exports sent to a browser as a file to save (datasets and snapshots alike)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from urllib.parse import quote

from fastapi.responses import FileResponse, Response, StreamingResponse
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask

from app.datasets.exporter import (
    EXPORT_FORMATS,
    ExportOptions,
    ExportSource,
    container_for,
    export_to_file,
    iter_export_bytes,
)
from app.platform.config import get_settings
from app.platform.errors import InvalidInput


def attachment(filename: str) -> str:
    """A Content-Disposition for a download; names may hold any printable character, which
    RFC 5987 keeps valid in the header."""
    ascii_name = "".join(c if c.isalnum() or c in "-_." else "_" for c in filename)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


def export_download(
    session: Session,
    source: ExportSource,
    fmt: str,
    stem: str,
    formats: Sequence[str] = EXPORT_FORMATS,
) -> Response:
    """The export of `source` in `fmt` as a download named `stem` plus its extension."""
    if fmt not in formats:
        raise InvalidInput(f"format: one of {', '.join(formats)}", field="format")
    options = ExportOptions(fmt)
    if fmt == "parquet":
        return _parquet_file(session, source, options, stem)
    return export_stream(session, source, options, stem)


def export_stream(
    session: Session, source: ExportSource, options: ExportOptions, stem: str
) -> StreamingResponse:
    """The export of `source` streamed as it is read (a JSON list, or JSONL for jsonl), as a
    download named `stem` plus its extension; not for parquet, which needs a file."""
    container = container_for(options.format, None)
    extension = "jsonl" if container == "jsonl" else "json"
    return StreamingResponse(
        iter_export_bytes(session, source, options, container),
        media_type="application/x-ndjson" if container == "jsonl" else "application/json",
        headers={"content-disposition": attachment(f"{stem}.{extension}")},
    )


def _parquet_file(
    session: Session, source: ExportSource, options: ExportOptions, stem: str
) -> FileResponse:
    """Parquet needs a seekable file: write one, send it, then delete it."""
    folder = get_settings().data_dir / "downloads"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex}.parquet"
    export_to_file(session, source, options, path)
    return FileResponse(
        path,
        media_type="application/vnd.apache.parquet",
        headers={"content-disposition": attachment(f"{stem}.parquet")},
        background=BackgroundTask(path.unlink, missing_ok=True),
    )
