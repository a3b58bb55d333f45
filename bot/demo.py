"""``frontierwatch demo``: a full cycle with no network and no tokens.

The sample feeds in ``bot/demo_feeds/`` (real headlines, see its README) are served from a local
aiohttp server. Their dates are shifted to the present so that the run behaves like a live one:
the first poll stores each feed's backlog quietly, then the feeds "publish" their newest items,
the second poll announces those, and a console digest closes the run.

Alerts and the digest go through the same router, outbox, renderer and console sender as `run`
on the default install, so what the demo prints is exactly what `run` would print.
"""

from __future__ import annotations

import re
import tempfile
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from aiohttp import web
from rich.console import Console

from bot.app import App
from bot.delivery.services import Delivery, ensure_console_destination
from bot.settings import Settings

DEMO_FEEDS = Path(__file__).resolve().parent / "demo_feeds"
HELD_BACK = 2  # newest items per feed that appear only for the second poll
_ITEM = re.compile(rb"<item>.*?</item>", re.S)
_PUBDATE = re.compile(rb"<pubDate>.*?</pubDate>", re.S)


def _render(feed: bytes, now: datetime, *, hide_newest: int) -> bytes:
    """Serve a feed with fresh dates (newest first, 3 h apart), optionally without its newest items."""
    items = _ITEM.findall(feed)
    if not items:
        return feed
    head, tail = feed.split(items[0], 1)[0], feed.rsplit(items[-1], 1)[1]
    fresh = []
    for position, item in enumerate(items):
        when = now - timedelta(minutes=20 + 180 * position)
        stamp = b"<pubDate>" + format_datetime(when).encode() + b"</pubDate>"
        fresh.append(
            _PUBDATE.sub(stamp, item)
            if _PUBDATE.search(item)
            else item.replace(b"</item>", stamp + b"</item>")
        )
    return head + b"".join(fresh[hide_newest:]) + tail


async def _serve(published: dict[str, bool]) -> tuple[web.AppRunner, str]:
    async def feed(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        path = DEMO_FEEDS / name
        if not path.is_file() or path.suffix != ".xml":
            raise web.HTTPNotFound()
        hide = 0 if published.get("all") else HELD_BACK
        body = _render(path.read_bytes(), datetime.now(UTC), hide_newest=hide)
        return web.Response(body=body, content_type="application/rss+xml", charset="utf-8")

    app = web.Application()
    app.router.add_get("/{name}", feed)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


async def run_demo(console: Console, *, keep: bool = False) -> None:
    feeds = sorted(DEMO_FEEDS.glob("*.xml"))
    state: dict[str, bool] = {"all": False}
    runner, base = await _serve(state)
    workdir = Path(tempfile.mkdtemp(prefix="frontierwatch-demo-"))
    db_path = Path("data/demo.sqlite3") if keep else workdir / "demo.sqlite3"
    db_path.unlink(missing_ok=True)
    sources_file = workdir / "sources.toml"
    sources_file.write_text(
        "".join(f'[[sources]]\nname = "{_title(p)}"\nurl = "{base}/{p.name}"\n\n' for p in feeds),
        encoding="utf-8",
    )
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{db_path}",
        sources_file=sources_file,
        allow_private_sources=True,  # the demo server is on loopback; real installs keep the guard on
        parse_workers=-1,
    )

    app = await App.build(settings)

    def write(text: str) -> None:
        console.print(text, markup=False)

    delivery = Delivery.build(app.store, settings, app.classifier.topics, write=write)
    app.poller.sinks.append(delivery.router)

    async def send_due() -> None:
        # Follow-ups wait for their interval, so "until nothing was sent", not `drain`.
        while await delivery.worker.run_once():
            pass

    try:
        console_id = await ensure_console_destination(app.store, settings, app.classifier.topics)
        terminal = await delivery.outbox.destination(console_id) if console_id is not None else None
        assert terminal is not None  # no chat platform in the demo's settings
        console.print(
            f"[bold]1. First poll[/] of {len(feeds)} sample feeds served from {base} (backlog, stored quietly)"
        )
        first = await app.poller.poll_due()
        await send_due()
        console.print(
            f"   {first.stored} stories stored, {first.relevant} relevant; nothing announced (no first-run flood)\n"
        )
        state["all"] = True
        console.print(
            "[bold]2. The feeds publish new items; second poll[/] announces what is relevant "
            f"(at most {terminal.alert_cap_per_hour} alerts an hour; the rest wait for the digest):\n"
        )
        await app.store.save_fetch_states(
            [{"id": s.id, "next_poll_at": datetime.now(UTC)} for s in await app.store.list_sources()]
        )
        second = await app.poller.poll_due()
        if not second.relevant:
            console.print("   (no new relevant stories)")
        await send_due()
        console.print("\n[bold]3. The console digest[/], as `run` prints it each morning:\n")
        await delivery.digests.digest_now(terminal.id)
        await send_due()
        console.print(f"Run `frontierwatch run` to watch the real sources in {Settings().sources_file}.")
        if keep:
            console.print(f"Demo database kept at {db_path}")
    finally:
        await app.close()
        await runner.cleanup()


def _title(path: Path) -> str:
    return path.stem.replace("_", " ").replace("-", " ").title()
