"""Benchmark: what a hostile webhook receiver costs everyone else.

Run with ``python -m bench.bench_webhooks``. Receivers run on 127.0.0.1 (the test-only
ALIGN_WEBHOOK_LOOPBACK_FOR_TESTS is set for this), the app on SQLite in a temporary directory.

(a) a receiver that drip-feeds its answer (a byte every 50 ms, for 60 s): how long the other
    deliveries of the same dispatcher pass wait — a second receiver in the same channel and two
    Slack digests of another channel (a recording sender) — against the same pass with no slow
    receiver; and when the slow delivery itself is given up (the sender's deadline).
(b) a receiver answering 400 MB: peak RSS of a process that delivers one event to it, against
    the same process reading the whole body as the sender used to (`httpx` `post`). Each variant
    runs in its own process; ru_maxrss is that process's peak.

Targets: (a) the others wait under 1 s; (b) RSS grows under 20 MB.
"""

from __future__ import annotations

import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import web

OFFERED = 400 * 1024 * 1024


async def _serve(handler: Any) -> tuple[web.AppRunner, int]:
    app = web.Application()
    app.router.add_post("/hook", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, runner.addresses[0][1]


def _app(tmp: str) -> Any:
    from adapters.bootstrap import build
    from adapters.settings import Settings
    from bot.clock import FakeClock
    from tests.conftest import START

    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        ALIGN_DATABASE_URL=f"sqlite:///{tmp}/bench.db",
        ALIGN_SECRET="bench",
        ALIGN_WEBHOOK_LOOPBACK_FOR_TESTS="true",
    )
    return build(settings, clock=FakeClock(START))


async def drip_pass(slow: bool) -> dict[str, float]:
    from adapters.runtime import Dispatcher
    from adapters.webhook_sender import WebhookSender
    from bot.context import Actor
    from tests.time.helpers import Recorder
    from tests.time.test_dispatcher import put

    done: dict[str, float] = {}
    start = 0.0

    async def fast(request: web.Request) -> web.Response:
        await request.read()
        done["fast receiver"] = time.monotonic() - start
        return web.Response()

    async def drip(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse()
        await response.prepare(request)
        until = time.monotonic() + 60
        try:
            while time.monotonic() < until:
                await response.write(b".")
                await asyncio.sleep(0.05)
        except ConnectionError:
            pass
        return response

    with tempfile.TemporaryDirectory() as tmp:
        app = _app(tmp)
        runners = []
        me = Actor("local", "general", "pm")
        for handler in ([drip] if slow else []) + [fast]:
            runner, port = await _serve(handler)
            runners.append(runner)
            assert app.engine.handle(me, f"webhook add http://127.0.0.1:{port}/hook").ok
        assert app.engine.handle(me, "decide Ship it").ok
        put(app, 2, channel="C-other", platform="slack")
        slack = Recorder("slack", app.clock)
        sender = WebhookSender(app.engine.deps.secret, targets=app.engine.deps.webhook_targets)
        dispatcher = Dispatcher(app, {"webhook": sender, "slack": slack}, sleep=_no_sleep)
        start = time.monotonic()
        task = asyncio.create_task(dispatcher.run_once())
        while len(slack.sent) < 2 or "fast receiver" not in done:
            await asyncio.sleep(0.005)
        done["slack digests"] = time.monotonic() - start
        await task
        done["pass ends (slow delivery given up)" if slow else "pass ends"] = (
            time.monotonic() - start
        )
        await sender.aclose()
        for runner in runners:
            await runner.cleanup()
        app.db.dispose()
    return done


async def _no_sleep(seconds: float) -> None:
    return None


async def huge_child(mode: str) -> None:
    """One delivery to a 400 MB receiver in this process; prints the peak RSS in MB."""
    import httpx

    async def huge(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Length": str(OFFERED)})
        await response.prepare(request)
        chunk = b"x" * 65536
        try:
            for _ in range(OFFERED // len(chunk)):
                await response.write(chunk)
        except (ConnectionError, RuntimeError):
            pass
        return response

    runner, port = await _serve(huge)
    url = f"http://127.0.0.1:{port}/hook"
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if mode == "read-whole-body":
        async with httpx.AsyncClient(timeout=60) as client:
            await client.post(url, content=b"{}")
    else:
        from adapters.delivery import Outgoing
        from adapters.webhook_sender import WebhookSender
        from bot.views import Reply
        from bot.webhook_targets import TargetPolicy

        sender = WebhookSender(b"bench", targets=TargetPolicy(allow_loopback=True))
        data = {"url": url, "body": {"event": "bench"}, "key_salt": "x"}
        reply = Reply(ok=True, kind="webhook", text="bench", data=data)
        await sender.send(Outgoing("w", "c", "webhook", reply, "bench-1"))
        await sender.aclose()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    await runner.cleanup()
    print(json.dumps({"before_mb": round(before), "after_mb": round(after)}))


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--huge":
        asyncio.run(huge_child(sys.argv[2]))
        return
    print("(a) a drip-feeding receiver: seconds until each delivery of the pass is done")
    for slow in (False, True):
        label = "with a 60 s drip-feeding receiver" if slow else "baseline, no slow receiver"
        figures = asyncio.run(drip_pass(slow))
        print(f"  {label}:")
        for name, seconds in figures.items():
            print(f"    {name:40s} {seconds:7.3f}")
    print("(b) a 400 MB response: peak RSS of the delivering process (MB)")
    for mode in ("read-whole-body", "webhook-sender"):
        out = subprocess.run(
            [sys.executable, "-m", "bench.bench_webhooks", "--huge", mode],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parents[1],
        ).stdout
        figures = json.loads(out.strip().splitlines()[-1])
        print(f"  {mode:20s} {figures['before_mb']:5d} → {figures['after_mb']:5d}")


if __name__ == "__main__":
    main()
