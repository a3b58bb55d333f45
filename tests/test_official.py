"""Official sources (issue 13, item 5): `official = true` in sources.toml, the tag set on stories at
ingest, official clusters ranked first in digests and shown by their official story, and the tag in
the text, Discord and Slack renderers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.app import App
from bot.delivery.bodies import discord_wire, slack_wire
from bot.digest import discord_render, slack_render
from bot.digest.common import OFFICIAL_TAG, DigestHeader
from bot.digest.entries import DigestEntry, Selection, TopicRule, select_entries
from bot.digest.text import text_alert, text_digest
from bot.domain import SourceSpec
from bot.settings import Settings
from bot.sources.config import SourcesConfigError, load_sources
from bot.store import models as m
from bot.store.repo import Store
from tests.support.feedserver import FeedServer
from tests.support.newsdb import add_story, open_store
from tests.support.specs import block_kit_errors, discord_request_errors, slack_request_errors

REPO = Path(__file__).resolve().parent.parent
TOPICS = ("distillation", "ip", "natsec", "release")
NOW = datetime.now(UTC)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    s = await open_store(database_url)
    yield s
    await s.engine.dispose()


# ------------------------------------------------------------------------------------ sources.toml
def test_official_is_read_from_the_sources_file_and_defaults_to_false(tmp_path: Path) -> None:
    path = tmp_path / "sources.toml"
    path.write_text(
        '[[sources]]\nname = "Regulator"\nurl = "https://gov.example/feed"\nofficial = true\n\n'
        '[[sources]]\nname = "Blog"\nurl = "https://blog.example/feed"\n'
    )
    specs = load_sources(path)
    assert [(s.name, s.official) for s in specs] == [("Regulator", True), ("Blog", False)]


@pytest.mark.parametrize(("value", "got"), [('"yes"', "'yes'"), ("1", "1")])
def test_a_non_boolean_official_is_one_line_that_says_what_is_accepted(
    tmp_path: Path, value: str, got: str
) -> None:
    path = tmp_path / "sources.toml"
    path.write_text(
        f'[[sources]]\nname = "Regulator"\nurl = "https://gov.example/feed"\nofficial = {value}\n'
    )
    with pytest.raises(SourcesConfigError) as info:
        load_sources(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.endswith(
        f"[[sources]] #1 ('Regulator'): `official` must be true or false "
        f"(true: the publisher's own feed, e.g. a regulator's) (got {got})"
    ), message


def test_the_shipped_sources_mark_primary_publishers_official() -> None:
    official = {s.name for s in load_sources(REPO / "config" / "sources.toml") if s.official}
    for name in (
        "Federal Register — Bureau of Industry and Security",
        "Federal Register — Copyright Office",
        "White House — Presidential Actions",
        "House Foreign Affairs Committee — press",
        "House Select Committee on the CCP — press",
        "OpenAI News",
        "Google DeepMind Blog",
        "Hugging Face — DeepSeek",
        "GitHub — openai/gpt-oss",
    ):
        assert name in official, name
    for name in (
        "Reuters — AI (via Google News)",
        "Techmeme",
        "Anthropic News (community mirror)",  # a third party's copy, not the lab's own feed
        "CSET Georgetown",  # research and analysis, not a primary source
        "Import AI",
        "arXiv — cs.AI",
    ):
        assert name not in official, name


# ------------------------------------------------------------------------------------ ingest
def rss(items: list[tuple[str, str, str]]) -> bytes:
    """items: (guid, link, title)."""
    body = "".join(
        f"<item><guid>{guid}</guid><title>{title}</title><link>{link}</link>"
        f"<description>Export controls on AI chips.</description>"
        f"<pubDate>{format_datetime(NOW - timedelta(hours=1))}</pubDate></item>"
        for guid, link, title in items
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>x</title>{body}</channel></rss>'.encode()


def settings_for(tmp_path: Path, sources: str) -> Settings:
    path = tmp_path / "sources.toml"
    path.write_text(sources)
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'fw.sqlite3'}",
        sources_file=path,
        topics_file=REPO / "config" / "topics.toml",
        allow_private_sources=True,
        parse_workers=-1,
    )


async def official_flags(app: App) -> dict[str, bool]:
    async with app.store.sessions() as session:
        rows = await session.execute(select(m.Story.url, m.Story.official))
        return {url: bool(flag) for url, flag in rows}


async def test_ingest_tags_stories_of_official_sources_and_later_sightings(tmp_path: Path) -> None:
    rule = "https://www.federalregister.gov/documents/2026/11/30/entity-list-additions"
    async with FeedServer() as srv:
        srv.add(
            "/news.xml",
            rss([("n1", rule, "Entity List additions"), ("n2", "https://news.example/a", "Chips")]),
        )
        srv.add("/fr.xml", rss([("f1", rule, "Additions to the Entity List")]))
        news = f'[[sources]]\nname = "News"\nurl = "{srv.url("/news.xml")}"\n\n'
        regulator = f'[[sources]]\nname = "Regulator"\nurl = "{srv.url("/fr.xml")}"\nofficial = true\n'
        settings = settings_for(tmp_path, news)
        app = await App.build(settings)
        try:
            await app.poller.poll_due()
            assert await official_flags(app) == {rule: False, "https://news.example/a": False}
        finally:
            await app.close()
        # The regulator's own feed carries the same document: the stored story becomes official.
        settings.sources_file.write_text(news + regulator)
        app = await App.build(settings)
        try:
            await app.poller.poll_due()
            assert await official_flags(app) == {rule: True, "https://news.example/a": False}
            # Unmarked in the file: its stories lose the tag; marked again: they get it back.
            await app.store.sync_sources([SourceSpec("Regulator", srv.url("/fr.xml"))])
            assert (await official_flags(app))[rule] is False
            await app.store.sync_sources([SourceSpec("Regulator", srv.url("/fr.xml"), official=True)])
            assert (await official_flags(app))[rule] is True
        finally:
            await app.close()


async def test_a_new_story_from_an_official_source_is_stored_official(tmp_path: Path) -> None:
    async with FeedServer() as srv:
        srv.add("/fr.xml", rss([("f1", "https://gov.example/rule-1", "Export rule")]))
        settings = settings_for(
            tmp_path, f'[[sources]]\nname = "Regulator"\nurl = "{srv.url("/fr.xml")}"\nofficial = true\n'
        )
        app = await App.build(settings)
        try:
            await app.poller.poll_due()
            assert await official_flags(app) == {"https://gov.example/rule-1": True}
        finally:
            await app.close()


async def test_a_source_a_channel_adds_is_never_official(store: Store) -> None:
    spec = SourceSpec("Mine", "https://mine.example/feed", official=True)
    source_id = await store.add_source(spec, origin="channel", owner_scope="discord:1:2")
    async with store.sessions() as session:
        row = await session.get(m.Source, source_id)
        assert row is not None and row.official is False


# ------------------------------------------------------------------------------------ digests
async def test_digest_ranks_official_first_and_shows_the_official_story_of_a_cluster(store: Store) -> None:
    since = datetime.now(UTC) - timedelta(days=1)
    strong = await add_story(store, "Analysts weigh chip rules", topics={"natsec": 0.95}, outlet="Reuters")
    news = await add_story(store, "US tightens chip exports", topics={"natsec": 0.7}, outlet="Bloomberg")
    await add_story(
        store,
        "Additions to the Entity List",
        topics={"natsec": 0.6},
        outlet="Federal Register",
        cluster_id=news.cluster_id,
        official=True,
    )
    now = datetime.now(UTC)
    async with store.sessions() as session:
        got = await select_entries(session, Selection(since, now, [TopicRule("natsec")]), TOPICS)
    assert [e.cluster_id for e in got] == [news.cluster_id, strong.cluster_id]  # despite 0.95 > 0.7
    lead = got[0]
    assert lead.official and lead.title == "Additions to the Entity List"
    assert lead.outlets == ("Federal Register", "Bloomberg")  # the shown story's outlet first
    assert not got[1].official


def official_entry(official: bool = True) -> DigestEntry:
    return DigestEntry(
        cluster_id=1,
        story_id=1,
        title="Additions to the Entity List",
        url="https://www.federalregister.gov/d/2026-1",
        outlets=("Federal Register",),
        published_at=NOW - timedelta(hours=2),
        topic="natsec",
        topics={"natsec": 0.8},
        reason="natsec (entity list)",
        summary="The Bureau adds entities.",
        official=official,
    )


def test_every_renderer_shows_the_tag_only_on_official_stories(shared_dir: Path) -> None:
    header = DigestHeader("Frontier Watch digest", NOW, "Mon 30 Nov 2026", 1)
    for official in (True, False):
        entry = official_entry(official)
        assert DigestEntry.from_dict(entry.to_dict()) == entry  # the outbox snapshot keeps it
        rendered = {
            "text digest": text_digest(header, [entry]),
            "text alert": text_alert(entry, NOW),
            "discord digest": str(discord_render.digest_body(header, [entry], 1, 1)),
            "discord alert": str(discord_render.alert_body(entry, NOW)),
            "slack digest": str(slack_render.digest_body(header, [entry], 1, 1)),
            "slack alert": str(slack_render.alert_body(entry, NOW)),
        }
        for name, text in rendered.items():
            assert (OFFICIAL_TAG in text) is official, (name, text)
        for body in (
            discord_render.digest_body(header, [entry], 1, 1),
            discord_render.alert_body(entry, NOW),
        ):
            wire = discord_wire(body)
            assert discord_request_errors(shared_dir, "POST", "/api/v10/channels/1/messages", wire) == []
        for body in (slack_render.digest_body(header, [entry], 1, 1), slack_render.alert_body(entry, NOW)):
            assert block_kit_errors(body["blocks"]) == []
            assert slack_request_errors(shared_dir, "chat.postMessage", slack_wire(body, "C1")) == []
    # Snapshots stored before official sources existed read as not official.
    legacy = official_entry(False).to_dict()
    del legacy["official"]
    assert DigestEntry.from_dict(legacy).official is False
