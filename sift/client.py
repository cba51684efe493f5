"""A Python client for Sift's HTTP API (`/api/v1`), on httpx: datasets and imports, examples
page by page with filters, scores, jobs followed to the end, collections, selections and
snapshots, and a snapshot straight into a `datasets.Dataset` or a pandas DataFrame.

    from sift.client import Sift

    sift = Sift("http://127.0.0.1:8000", token="...")  # or SIFT_URL / SIFT_TOKEN
    sift.import_file("pool", "alpaca.json", wait=True)
    sift.score("pool", "lima", wait=True)
    for example in sift.examples("pool", score="lima>=0.5"):
        ...

It talks HTTP only and imports nothing of the server, so it works against any Sift.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from sift.shapes import (
    Collection,
    Dataset,
    Example,
    Job,
    JobFailed,
    Progress,
    SiftError,
    Snapshot,
    arrow_rows,
    build,
    raise_for,
)

if TYPE_CHECKING:
    import datasets as hf_datasets
    import pandas

__all__ = [
    "Collection",
    "Dataset",
    "Example",
    "Job",
    "JobFailed",
    "Sift",
    "SiftError",
    "Snapshot",
    "arrow_rows",
]

DEFAULT_URL = "http://127.0.0.1:8000"


class Sift:
    """A session with one Sift server, authenticated by an API token (`sift token create USER`)."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout_s: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        token = token or os.environ.get("SIFT_TOKEN")
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(
            base_url=(url or os.environ.get("SIFT_URL") or DEFAULT_URL).rstrip("/") + "/api/v1",
            headers=headers,
            timeout=timeout_s,
            transport=transport,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    def __enter__(self) -> Sift:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ------------------------------------------------------------ plumbing

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = self.http.request(method, path, **kwargs)
        raise_for(answer)
        return answer.json() if answer.content else None

    def _job(self, data: dict[str, Any], wait: bool, progress: Progress | bool | None) -> Job:
        job = build(Job, data)
        return self.wait(job, progress=progress) if wait else job

    # ------------------------------------------------------------ datasets and imports

    def datasets(self) -> list[Dataset]:
        """Every dataset with its size."""
        return [build(Dataset, d) for d in self._call("GET", "/datasets")]

    def dataset(self, name: str) -> Dataset:
        """One dataset with its size."""
        return build(Dataset, self._call("GET", f"/datasets/{_quote(name)}"))

    def create_dataset(self, name: str, description: str = "") -> Dataset:
        """A new, empty dataset."""
        body = {"name": name, "description": description}
        return build(Dataset, self._call("POST", "/datasets", json=body))

    def import_file(
        self,
        dataset: str,
        path: str | Path,
        *,
        format: str = "auto",
        source: str | None = None,
        skip_invalid: bool = False,
        wait: bool = True,
        progress: Progress | bool | None = None,
    ) -> Job:
        """Upload a file and import it into `dataset` (created if new), as a job."""
        path = Path(path)
        form = {"format": format, "skip_invalid": str(skip_invalid).lower()}
        if source:
            form["source"] = source
        with path.open("rb") as fh:
            data = self._call(
                "POST", f"/datasets/{_quote(dataset)}/imports", files={"file": (path.name, fh)},
                data=form,
            )  # fmt: skip
        return self._job(data, wait, progress)

    # ------------------------------------------------------------ examples

    def examples(
        self,
        dataset: str,
        *,
        score: str | list[str] | None = None,
        source: str | None = None,
        status: str | None = None,
        q: str | None = None,
        one_per_cluster: str | None = None,
        page_size: int = 200,
        limit: int | None = None,
    ) -> Iterator[Example]:
        """Every example that passes the filters, by id, fetched a page at a time. `score`:
        `SCORER OP NUMBER` or `SCORER:STATE` (all must hold), as in `sift select --filter`."""
        params: dict[str, Any] = {"limit": page_size, "source": source, "status": status, "q": q,
                                  "one_per_cluster": one_per_cluster}  # fmt: skip
        params["score"] = [score] if isinstance(score, str) else score
        params = {k: v for k, v in params.items() if v is not None}
        seen = 0
        after: int | None = None
        while True:
            page = self._call(
                "GET", f"/datasets/{_quote(dataset)}/examples",
                params=params | ({"after": after} if after is not None else {}),
            )  # fmt: skip
            for item in page["items"]:
                if limit is not None and seen >= limit:
                    return
                seen += 1
                yield build(Example, item)
            after = page["next_after"]
            if after is None:
                return

    def example(self, example_id: int) -> Example:
        """One example."""
        return build(Example, self._call("GET", f"/examples/{example_id}"))

    def update_example(self, example: Example, reason: str = "", **changes: Any) -> Example:
        """Change an example's fields; refused (409) if someone changed it since it was read."""
        return build(
            Example,
            self._call(
                "PATCH", f"/examples/{example.id}", headers={"if-match": str(example.version)},
                json={**changes, "reason": reason},
            ),
        )  # fmt: skip

    # ------------------------------------------------------------ scores and embeddings

    def score(
        self,
        dataset: str,
        scorer: str,
        *,
        endpoint: str | None = None,
        model: str | None = None,
        budget_usd: float | None = None,
        wait: bool = True,
        progress: Progress | bool | None = None,
    ) -> Job:
        """Score every example of `dataset` that has no score from `scorer` yet, as a job."""
        body = {"scorer": scorer, "endpoint": endpoint, "model": model, "budget_usd": budget_usd}
        data = self._call("POST", f"/datasets/{_quote(dataset)}/scores", json=body)
        return self._job(data, wait, progress)

    def scores(self, dataset: str) -> list[dict[str, Any]]:
        """The scorers that have scored `dataset`, with their counts."""
        return list(self._call("GET", f"/datasets/{_quote(dataset)}/scores"))

    def histogram(self, dataset: str, scorer: str, bins: int = 20) -> dict[str, Any]:
        """The distribution of a scorer's values over a dataset."""
        path = f"/datasets/{_quote(dataset)}/scores/{_quote(scorer)}/histogram"
        return dict(self._call("GET", path, params={"bins": bins}))

    def embed(
        self,
        dataset: str,
        model: str | None = None,
        *,
        wait: bool = True,
        progress: Progress | bool | None = None,
    ) -> Job:
        """Embed every example of `dataset` with no vector from the model yet, as a job."""
        data = self._call("POST", f"/datasets/{_quote(dataset)}/embeddings", json={"model": model})
        return self._job(data, wait, progress)

    # ------------------------------------------------------------ jobs

    def job(self, job_id: int) -> Job:
        """A job as it stands now."""
        return build(Job, self._call("GET", f"/jobs/{job_id}"))

    def jobs(self) -> list[Job]:
        """Recent jobs, newest first."""
        return [build(Job, j) for j in self._call("GET", "/jobs")]

    def cancel(self, job: Job | int) -> Job:
        """Ask a job to stop."""
        job_id = job.id if isinstance(job, Job) else job
        return build(Job, self._call("POST", f"/jobs/{job_id}/cancel"))

    def wait(
        self,
        job: Job | int,
        *,
        progress: Progress | bool | None = None,
        poll_s: float = 0.5,
        timeout_s: float | None = None,
    ) -> Job:
        """Follow a job until it ends; JobFailed unless it succeeded. `progress`: a callable
        given each new state of the job, or True for a line on stderr."""
        report = _stderr_progress if progress is True else progress or None
        job_id = job.id if isinstance(job, Job) else job
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        last: tuple[Any, ...] | None = None
        while True:
            current = self.job(job_id)
            state = (current.state, current.done, current.total)
            if report and state != last:
                report(current)
                last = state
            if current.finished:
                if current.state != "succeeded":
                    raise JobFailed(current)
                return current
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {current.state} after {timeout_s} s")
            time.sleep(poll_s)

    # ------------------------------------------------------------ collections and selection

    def collections(self) -> list[Collection]:
        """Every collection with its size."""
        return [build(Collection, c) for c in self._call("GET", "/collections")]

    def collection(self, name: str) -> Collection:
        """One collection, how full it is, and the recipes that fed it."""
        return build(Collection, self._call("GET", f"/collections/{_quote(name)}"))

    def create_collection(
        self,
        name: str,
        *,
        target_size: int = 1000,
        quotas: dict[str, dict[str, int]] | None = None,
        description: str = "",
    ) -> Collection:
        """A new collection with a target size and quotas per source or category."""
        body = {"name": name, "target_size": target_size, "quotas": quotas or {},
                "description": description}  # fmt: skip
        return build(Collection, self._call("POST", "/collections", json=body))

    def add_items(self, collection: str, example_ids: list[int], reason: str = "") -> int:
        """Add examples by hand; how many were added."""
        body = {"example_ids": example_ids, "reason": reason}
        return int(
            self._call("POST", f"/collections/{_quote(collection)}/items", json=body)["changed"]
        )

    def preview(self, dataset: str, method: str, **spec: Any) -> dict[str, Any]:
        """What a selection recipe would pick (`sift select --preview`), writing nothing."""
        return dict(
            self._call(
                "POST", "/selections/preview", json={"dataset": dataset, "method": method, **spec}
            )
        )

    def select(
        self,
        collection: str,
        dataset: str,
        method: str,
        *,
        wait: bool = True,
        progress: Progress | bool | None = None,
        **spec: Any,
    ) -> Job:
        """Run a selection recipe (threshold, deita, lima-quota, random, ...: `budget`,
        `filters`, `scorer`, `threshold`, ...) from `dataset` into `collection`, as a job."""
        body = {"dataset": dataset, "method": method, **spec}
        data = self._call("POST", f"/collections/{_quote(collection)}/select", json=body)
        return self._job(data, wait, progress)

    # ------------------------------------------------------------ snapshots

    def freeze(self, collection: str, *, note: str = "", only_accepted: bool = False) -> Snapshot:
        """Freeze a collection; the same content gives the existing snapshot back."""
        body = {"note": note, "only_accepted": only_accepted}
        path = f"/collections/{_quote(collection)}/snapshots"
        return build(Snapshot, self._call("POST", path, json=body))

    def snapshots(self, collection: str) -> list[Snapshot]:
        """A collection's snapshots, newest first."""
        path = f"/collections/{_quote(collection)}/snapshots"
        return [build(Snapshot, s) for s in self._call("GET", path)]

    def snapshot(self, ref: int | str) -> Snapshot:
        """A snapshot by its number or its digest (or 8+ of its first hex digits)."""
        return build(Snapshot, self._call("GET", f"/snapshots/{ref}"))

    def export(self, ref: int | str, format: str = "jsonl") -> Iterator[dict[str, Any]]:
        """A snapshot's records in an export format (jsonl: Sift's own record of each
        example), streamed."""
        with self.http.stream(
            "GET", f"/snapshots/{ref}/export", params={"format": format}
        ) as answer:
            if answer.status_code >= 400:
                answer.read()
                raise_for(answer)
            if format in ("jsonl", "dpo"):
                for line in answer.iter_lines():
                    if line.strip():
                        yield json.loads(line)
            else:
                yield from json.loads(answer.read())

    def to_dataset(self, ref: int | str, format: str = "jsonl") -> hf_datasets.Dataset:
        """A snapshot as a Hugging Face `datasets.Dataset`: the export's rows, in order, with
        `meta` as JSON text (needs the `datasets` package: `pip install 'sift[hf]'`)."""
        import datasets

        return datasets.Dataset.from_list(arrow_rows(self.export(ref, format)))

    def to_pandas(self, ref: int | str, format: str = "jsonl") -> pandas.DataFrame:
        """A snapshot as a pandas DataFrame, one row per exported record."""
        import pandas

        return pandas.DataFrame.from_records(list(self.export(ref, format)))


def _quote(part: str) -> str:
    from urllib.parse import quote

    return quote(part, safe="")


def _stderr_progress(job: Job) -> None:
    total = f"/{job.total:,}" if job.total else ""
    print(f"job {job.id} {job.kind}: {job.state} {job.done:,}{total}", file=sys.stderr)
