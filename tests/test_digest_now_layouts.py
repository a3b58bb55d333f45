"""`/watch digest now` works in every documented layout (robustness issue, item 3): with the Procfile's
`serve` + `run` split, `serve` queues the digest in the database and `run`'s worker sends it."""

from __future__ import annotations

from pathlib import Path

from bot.app import App
from bot.delivery.services import Delivery, queue_only_digests
from bot.platforms.services import handler_deps
from bot.settings import Settings
from handlers import Command, Invocation, Rights, handle
from tests.support.newsdb import add_destination, add_story, deliveries

REPO = Path(__file__).resolve().parent.parent


async def test_serve_queues_the_digest_and_the_worker_of_run_sends_it(tmp_path: Path) -> None:
    sources = tmp_path / "sources.toml"
    sources.write_text("")
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'fw.sqlite3'}",
        sources_file=sources,
        topics_file=REPO / "config" / "topics.toml",
        parse_workers=-1,
    )
    serve = await App.build(settings, sync_sources=False)  # the `serve` process: sends nothing
    try:
        serve.digests = queue_only_digests(serve)
        await add_destination(serve.store, "console", "C1", workspace_id="W1")
        await add_story(
            serve.store, "US tightens export controls on AI chips to China", topics={"natsec": 0.9}
        )
        deps = handler_deps(serve)
        reply = await handle(
            deps,
            Command("console", "W1", "C1", "U1", Rights.fixed(True, "x"), Invocation("digest", "now")),
        )
        assert reply.status == "ok" and "on its way" in reply.title, reply.text
        queued = [r for r in await deliveries(serve.store) if r.kind == "digest"]
        assert queued and {r.status for r in queued} == {"pending"}

        printed: list[str] = []  # the `run` process's worker, on the same database
        worker = Delivery.build(serve.store, settings, serve.classifier.topics, write=printed.append).worker
        await worker.drain(within=20)
        await worker.stop()
        assert {r.status for r in await deliveries(serve.store) if r.kind == "digest"} == {"sent"}
        assert any("export controls" in text for text in printed)
    finally:
        await serve.close()
