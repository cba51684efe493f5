"""A local OpenAI-compatible chat server for tests and benchmarks, with faults on demand.

Directives inside the last user message steer each answer, so that behaviour is fixed per
prompt even when the client runs in another process:

- ``[[reply:TEXT]]``: answer exactly TEXT (the two characters ``\\n`` become a newline)
- ``[[logprobs:1=-2.0,2=-2.0]]``: exactly these top logprobs at the first position
- ``[[status:CODE:times=N:retry_after=S]]``: the first N requests of this prompt answer HTTP
  CODE, with ``Retry-After: S`` when given (``retry_after_ms=MS`` sends ``retry-after-ms``)
- ``[[hang]]``: never answer
- ``[[finish:length]]``: finish_reason "length"
- ``[[latency:S]]``: this prompt's latency in seconds
- ``[[usage:none]]``: leave ``usage`` out, as some servers do

A model whose name ends in ``reward`` answers as NVIDIA NIM serves reward models: the
messages end with the assistant's answer to rate, and the content is
``reward:VALUE`` (``default_reward`` of the last user message and the answer, unless the
answer holds ``[[reward:VALUE]]``; ``[[attributes:helpfulness=1.5,correctness=2]]`` answers
those pairs instead, as HelpSteer models do), with each pair's value as a logprob too.
Directives in the answer count as well as in the last user message.

Scripted replies, for answers that depend on more than one marker (a judge shown two answers
in either order): ``LLMServer.script(pattern, reply, model=None)`` (or ``POST /_script``)
answers a request whose last user message matches the regex ``pattern`` (and whose model is
``model``, when given) with ``reply``, expanded with the match's groups (``\\1``); the newest
matching rule wins over every directive but the faults. ``reset()`` forgets the rules.
A scripted reply that ends with ``[[finish:length]]`` is sent without it, cut off
(finish_reason "length").

The Batch API (``/v1/files``, ``/v1/batches``: ``tests.llm_batches``) answers each line of a
batch as the chat endpoint would, counted the same, after ``batch_delay_s`` (a batch stays
in_progress while ``hold_batches()`` holds it); a prompt that would hang is never answered
there, and its batch expires.

Run in a thread with ``LLMServer()`` as a context manager, or as a process with
``python -m tests.llm_server --port 0 --latency-ms 50`` (prints its base URL first).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import math
import re
import socket
import sys
import threading
import time
from collections import defaultdict
from types import TracebackType
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

DEFAULT_REPLY = "4.5\nThe answer is accurate and complete."
LOGPROB_REPLY = "5"
DEFAULT_LOGPROBS = {
    "5": -0.1,
    "6": -2.5,
    "4": -3.0,
    "3": -4.5,
    "The": -5.0,
    "2": -6.0,
    "1": -7.5,
    " ": -8.0,
}
CUT_OFF = "[[finish:length]]"
Answer = tuple[int, dict[str, Any], dict[str, str]]
_DIRECTIVE = re.compile(r"\[\[(\w+)(?::(.*?))?\]\]", re.DOTALL)


def prompt_key(text: str) -> str:
    """The key the server files a prompt under: the sha1 hex of the last user message."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def _tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def _directives(text: str) -> dict[str, str]:
    return {m.group(1): m.group(2) or "" for m in _DIRECTIVE.finditer(text)}


def _options(spec: str) -> tuple[str, dict[str, str]]:
    """`429:times=2:retry_after=1` -> ("429", {"times": "2", "retry_after": "1"})."""
    head, *rest = spec.split(":")
    return head, dict(part.split("=", 1) for part in rest if "=" in part)


class _State:
    """What the server has seen; shared by the handlers and the owner thread."""

    def __init__(self, latency_s: float, batch_delay_s: float = 0.0) -> None:
        from tests.llm_batches import Batches

        self.latency_s = latency_s
        self.batches = Batches(batch_delay_s)
        self.lock = threading.Lock()
        self.stopping = False
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.total = 0
            self.by_prompt: dict[str, int] = defaultdict(int)
            self.times: dict[str, list[float]] = defaultdict(list)
            self.rules: list[tuple[re.Pattern[str], str, str | None]] = []

    def add_rule(self, pattern: str, reply: str, model: str | None) -> None:
        with self.lock:
            self.rules.append((re.compile(pattern, re.DOTALL), reply, model))

    def scripted(self, text: str, model: str | None) -> str | None:
        """The reply of the newest rule that matches, expanded; None when none does."""
        with self.lock:
            rules = list(self.rules)
        for pattern, reply, wanted in reversed(rules):
            if wanted is not None and wanted != model:
                continue
            found = pattern.search(text)
            if found:
                return found.expand(reply)
        return None

    def arrive(self, key: str) -> int:
        with self.lock:
            self.total += 1
            self.by_prompt[key] += 1
            self.times[key].append(time.time())
            return self.by_prompt[key]

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "total": self.total,
                "by_prompt": dict(self.by_prompt),
                "times": {k: list(v) for k, v in self.times.items()},
            }


def _error(code: int, retry_after: dict[str, str]) -> Answer:
    headers = {}
    if "retry_after" in retry_after:
        headers["Retry-After"] = retry_after["retry_after"]
    if "retry_after_ms" in retry_after:
        headers["retry-after-ms"] = retry_after["retry_after_ms"]
    kind = "rate_limit_exceeded" if code == 429 else "server_error"
    body = {
        "error": {"message": f"injected HTTP {code}", "type": kind, "param": None, "code": kind}
    }
    return code, body, headers


def _logprob_content(reply: str, top: dict[str, float], n: int) -> list[dict[str, Any]]:
    ranked = sorted(top.items(), key=lambda item: -item[1])[: max(n, 0)]
    first = reply if reply in top else reply[:1]
    entries = [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in ranked]
    content = [
        {
            "token": first,
            "logprob": top.get(first, -0.01),
            "bytes": list(first.encode()),
            "top_logprobs": entries,
        }
    ]
    for i in range(len(first), len(reply), 4):
        piece = reply[i : i + 4]
        content.append(
            {"token": piece, "logprob": -0.01, "bytes": list(piece.encode()), "top_logprobs": []}
        )
    return content


def _reply(directives: dict[str, str], want_logprobs: bool) -> tuple[str, dict[str, float]]:
    top = DEFAULT_LOGPROBS
    if "logprobs" in directives:
        pairs = (p.split("=", 1) for p in directives["logprobs"].split(",") if "=" in p)
        top = {token: float(value) for token, value in pairs}
    if "reply" in directives:
        return directives["reply"].replace("\\n", "\n"), top
    if want_logprobs:
        best = max(top.items(), key=lambda item: item[1])[0] if top else LOGPROB_REPLY
        return best, top
    return DEFAULT_REPLY, top


def default_reward(prompt: str, answer: str) -> float:
    """The reward the test server gives an answer without a `[[reward:...]]`: longer answers
    to shorter prompts score higher, below 0 when the answer is shorter."""
    return round(math.log((1 + len(answer)) / (1 + len(prompt))), 6)


def is_reward_model(model: str | None) -> bool:
    """Whether the server answers `model` as a NIM reward model."""
    return (model or "").lower().endswith("reward")


def _reward_reply(messages: list[dict[str, Any]], directives: dict[str, str]) -> str:
    """`reward:VALUE`, or the pairs of `[[attributes:...]]`, as NIM's content."""
    if "attributes" in directives:
        pairs = (p.split("=", 1) for p in directives["attributes"].split(",") if "=" in p)
        return ",".join(f"{name}:{value}" for name, value in pairs)
    if "reward" in directives:
        return f"reward:{directives['reward']}"
    users = [m for m in messages if m.get("role") == "user"]
    prompt = str(users[-1].get("content") or "") if users else ""
    return f"reward:{default_reward(prompt, str(messages[-1].get('content') or ''))}"


def _reward_logprobs(reply: str) -> list[dict[str, Any]]:
    """NIM's logprobs of a reward answer: each pair's name as a token, its value as logprob."""
    content = []
    for pair in reply.split(","):
        name, _, value = pair.partition(":")
        try:
            logprob = float(value)
        except ValueError:
            continue
        if not math.isfinite(logprob):
            continue  # JSON has no NaN
        content.append({"token": name, "logprob": logprob, "bytes": None, "top_logprobs": []})
    return content


def _completion(body: dict[str, Any], directives: dict[str, str]) -> dict[str, Any]:
    messages = body.get("messages") or []
    want_logprobs = bool(body.get("logprobs"))
    reward = is_reward_model(body.get("model")) and bool(messages)
    if reward:
        # The answer's own directives count too: it is what a reward model reads.
        directives = directives | _directives(str(messages[-1].get("content") or ""))
    reply, top = _reply(directives, want_logprobs)
    if reward and "reply" not in directives:
        reply = _reward_reply(messages, directives)
    finish = directives.get("finish") or "stop"
    max_tokens = body.get("max_tokens") or body.get("max_completion_tokens")
    if max_tokens is not None and _tokens(reply) > int(max_tokens):
        reply, finish = reply[: int(max_tokens) * 4], "length"
    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": reply, "refusal": None},
        "finish_reason": finish,
        "logprobs": None,
    }
    if reward:
        choice["logprobs"] = {"content": _reward_logprobs(reply), "refusal": None}
    elif want_logprobs:
        n = int(body.get("top_logprobs") or 0)
        choice["logprobs"] = {"content": _logprob_content(reply, top, n), "refusal": None}
    prompt_chars = sum(len(str(m.get("content") or "")) for m in messages)
    prompt_tokens, completion_tokens = math.ceil(prompt_chars / 4), max(1, _tokens(reply))
    completion: dict[str, Any] = {
        "id": f"chatcmpl-{prompt_key(reply)[:12]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model") or "test-model",
        "choices": [choice],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
    if directives.get("usage") == "none":
        del completion["usage"]
    return completion


async def respond(state: _State, body: dict[str, Any], *, batch: bool = False) -> Answer:
    """The answer to one chat completion request: (HTTP status, JSON body, headers). In a
    batch, a prompt that would hang is never answered (status 0) and latency is the batch's."""
    users = [m for m in body.get("messages") or [] if m.get("role") == "user"]
    last = str(users[-1].get("content") or "") if users else ""
    seen = state.arrive(prompt_key(last))
    directives = _directives(last)
    if "status" in directives:
        code, options = _options(directives["status"])
        if seen <= int(options.get("times", "1")):
            return _error(int(code), options)
    if "hang" in directives:
        while not state.stopping and not batch:
            await asyncio.sleep(0.05)
        return (0, {}, {}) if batch else _error(503, {})
    scripted = state.scripted(last, body.get("model"))
    if scripted is not None:
        directives["reply"] = scripted
        # A scripted reply ending in the finish marker is sent as cut off.
        if scripted.endswith(CUT_OFF):
            directives["reply"], directives["finish"] = scripted[: -len(CUT_OFF)], "length"
    latency = float(directives.get("latency", state.latency_s))
    if latency > 0 and not batch:
        await asyncio.sleep(latency)
    return 200, _completion(body, directives), {}


def build_app(state: _State) -> Starlette:
    """The Starlette app over `state`, with the Batch API of `tests.llm_batches`."""
    from tests.llm_batches import batch_routes

    async def chat(request: Request) -> Response:
        code, body, headers = await respond(state, await request.json())
        return JSONResponse(body, status_code=code, headers=headers)

    async def stats(_request: Request) -> Response:
        return JSONResponse(state.snapshot())

    async def reset(_request: Request) -> Response:
        state.reset()
        return JSONResponse({"ok": True})

    async def script(request: Request) -> Response:
        rule = await request.json()
        state.add_rule(rule["pattern"], rule["reply"], rule.get("model"))
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/_stats", stats, methods=["GET"]),
            Route("/_reset", reset, methods=["POST"]),
            Route("/_script", script, methods=["POST"]),
            *batch_routes(state.batches, lambda body: respond(state, body, batch=True)),
        ]
    )


def _listen(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(2048)
    return sock


def _config(app: Starlette) -> uvicorn.Config:
    return uvicorn.Config(
        app, log_level="warning", lifespan="off", access_log=False, timeout_graceful_shutdown=1
    )


class _QuickServer(uvicorn.Server):
    """uvicorn looks for a stop request every 0.1 s; tests start and stop a server each, so
    this one looks every 0.01 s (and keeps its once-a-second housekeeping on time)."""

    async def main_loop(self) -> None:
        ticks = 0
        while not await self.on_tick(0 if ticks % 100 == 0 else 1):
            ticks += 1
            await asyncio.sleep(0.01)


class LLMServer:
    """The server on a free local port, served from a background thread."""

    def __init__(self, latency_s: float = 0.0, batch_delay_s: float = 0.0) -> None:
        self.state = _State(latency_s, batch_delay_s)
        self._sock = _listen(0)
        self.port = self._sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._server = _QuickServer(_config(build_app(self.state)))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def start(self) -> LLMServer:
        """Start serving; returns once the server accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the test LLM server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving, ending requests that hang."""
        self.state.stopping = True
        self._server.should_exit = True
        self._thread.join(10)
        self._sock.close()

    def stats(self) -> dict[str, Any]:
        """Like GET /_stats: total requests, and count and arrival times per prompt key."""
        return self.state.snapshot()

    def count(self, prompt: str) -> int:
        """How many requests came for the prompt whose last user message is `prompt`."""
        return self.stats()["by_prompt"].get(prompt_key(prompt), 0)

    def times(self, prompt: str) -> list[float]:
        """The arrival times (unix seconds) of the requests for `prompt`."""
        return self.stats()["times"].get(prompt_key(prompt), [])

    def reset(self) -> None:
        """Forget what was seen, and the scripted rules."""
        self.state.reset()

    def script(self, pattern: str, reply: str, model: str | None = None) -> None:
        """Answer requests whose last user message matches `pattern` (and whose model is
        `model`, when given) with `reply`, expanded with the match's groups."""
        self.state.add_rule(pattern, reply, model)

    def hold_batches(self) -> None:
        """Keep every batch in_progress, answering nothing, until `release_batches`."""
        self.state.batches.held = True

    def release_batches(self) -> None:
        """Let held batches go on (after their delay)."""
        self.state.batches.held = False

    def batch_stats(self) -> dict[str, Any]:
        """Like GET /_batches: files uploaded, batches created, lines answered, by status."""
        return self.state.batches.snapshot()

    def __enter__(self) -> LLMServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    """Serve in this process; print the base URL as the first line of stdout."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--batch-delay-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    state = _State(args.latency_ms / 1000, args.batch_delay_ms / 1000)
    sock = _listen(args.port)
    print(f"http://127.0.0.1:{sock.getsockname()[1]}/v1", flush=True)
    server = uvicorn.Server(_config(build_app(state)))
    try:
        server.run(sockets=[sock])
    finally:
        state.stopping = True
        sock.close()
    sys.exit(0)


if __name__ == "__main__":
    main()
