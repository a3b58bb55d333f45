"""The platform-neutral `/watch` handlers against the real store (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.store import models as m
from handlers import Command, Reply, Rights, handle, parse_text
from handlers.digest import resolve_timezone, search_timezones
from handlers.model import UsageError
from tests.support.chat_env import HTML, NOW, RSS, ChatEnv, chat_env
from tests.support.feedserver import FeedServer, StaticResolver

MANAGER = "the Manage Channels permission"


@pytest.fixture
async def env(database_url: str) -> AsyncIterator[ChatEnv]:
    async with chat_env(database_url) as e:
        yield e


@pytest.fixture
async def feeds() -> AsyncIterator[FeedServer]:
    async with FeedServer() as server:
        server.add("/feed.xml", RSS)
        server.add("/page.html", HTML, content_type="text/html")
        yield server


async def run(env: ChatEnv, text: str, *, manager: bool = True, channel: str = "C1") -> Reply:
    command = Command(
        platform="slack",
        workspace_id="T1",
        channel_id=channel,
        user_id="U1",
        rights=Rights.fixed(manager, MANAGER),
        invocation=parse_text(text),
        channel_name="policy",
        user_name="alice",
    )
    return await handle(env.deps, command)


# ---------------------------------------------------------------------------------------- parsing
def test_parser_splits_group_action_and_rest() -> None:
    inv = parse_text('  keywords   add nvidia "export controls"  ')
    assert (inv.group, inv.action, inv.rest) == ("keywords", "add", 'nvidia "export controls"')
    assert parse_text("").group == "help"
    assert parse_text("sources").action is None
    with pytest.raises(UsageError, match="Unknown command `subscrbe`"):
        parse_text("subscrbe distillation")
    with pytest.raises(UsageError, match="`digest` has no action `tomorrow`"):
        parse_text("digest tomorrow")


# ---------------------------------------------------------------------------------------- subscriptions
async def test_subscribe_stores_mode_and_score_and_updates(env: ChatEnv) -> None:
    reply = await run(env, "subscribe distillation alerts 0.7")
    assert reply.status == "ok" and not reply.ephemeral
    assert "Subscribed this channel to `distillation`" in reply.title
    dest = await env.destination("C1")
    assert dest is not None and (dest.platform, dest.workspace_id, dest.name) == ("slack", "T1", "policy")
    # A new destination is immediately claimable by the digest clock (default 08:00 UTC, daily).
    assert dest.next_digest_at == datetime(2026, 3, 29, 8, 0, tzinfo=UTC)
    subs = await env.rows(m.Subscription)
    assert [(s.topic, s.mode, s.min_score) for s in subs] == [("distillation", "alerts", 0.7)]

    reply = await run(env, "subscribe DISTILLATION 55% digest")
    assert "Updated the subscription" in reply.title
    subs = await env.rows(m.Subscription)
    assert [(s.topic, s.mode, s.min_score) for s in subs] == [("distillation", "digest", 0.55)]
    await run(env, "subscribe natsec")
    assert sorted((s.topic, s.mode) for s in await env.rows(m.Subscription)) == [
        ("distillation", "digest"),
        ("natsec", "both"),
    ]


async def test_subscribe_bad_input_names_problem_and_saves_nothing(env: ChatEnv) -> None:
    reply = await run(env, "subscribe distilation")
    assert reply.status == "error" and reply.ephemeral
    assert "Unknown topic `distilation`. Did you mean `distillation`?" in reply.title
    assert all(f"`{t}`" in reply.text for t in ("distillation", "ip", "natsec", "release"))
    reply = await run(env, "subscribe natsec 1.5")
    assert reply.status == "error" and "out of range" in reply.title and "0 to 1" in reply.text
    reply = await run(env, "subscribe natsec loud")
    assert "`loud` is neither a mode nor a score" in reply.title and "`alerts`" in reply.text
    reply = await run(env, "subscribe")
    assert reply.title == "Which topic?"
    assert await env.rows(m.Subscription) == [] and await env.rows(m.Destination) == []


async def test_unsubscribe_one_all_and_not_subscribed(env: ChatEnv) -> None:
    await run(env, "subscribe natsec")
    await run(env, "subscribe ip")
    await run(env, "subscribe release")
    reply = await run(env, "unsubscribe ip")
    assert reply.status == "ok" and "from `ip`" in reply.title
    assert sorted(s.topic for s in await env.rows(m.Subscription)) == ["natsec", "release"]
    reply = await run(env, "unsubscribe ip")
    assert reply.status == "info" and "not subscribed to `ip`" in reply.title and "`natsec`" in reply.text
    reply = await run(env, "unsubscribe nope")
    assert reply.status == "error" and "Unknown topic" in reply.title
    reply = await run(env, "unsubscribe all")
    assert "every topic" in reply.title and "natsec, release" in reply.text
    assert await env.rows(m.Subscription) == []


async def test_topics_lists_all_and_marks_subscribed_without_writing(env: ChatEnv) -> None:
    reply = await run(env, "topics", manager=False)
    assert reply.status == "info" and reply.ephemeral
    assert await env.rows(m.Destination) == []  # reading leaves no trace
    await run(env, "subscribe natsec alerts")
    reply = await run(env, "topics", manager=False)
    assert "`natsec` — subscribed (alerts)" in reply.text and "`ip`:" in reply.text


# ---------------------------------------------------------------------------------------- digest
async def test_digest_time_with_zone_computes_next_run_across_dst(env: ChatEnv) -> None:
    reply = await run(env, "digest time 8:30 europe/berlin")
    assert reply.status == "ok" and "08:30 Europe/Berlin" in reply.title
    dest = await env.destination("C1")
    assert dest is not None and (dest.digest_time, dest.timezone) == ("08:30", "Europe/Berlin")
    # 29 March 2026 is the DST switch: 08:30 CEST is 06:30 UTC, not 07:30.
    assert dest.next_digest_at == datetime(2026, 3, 29, 6, 30, tzinfo=UTC)
    assert "Sun 2026-03-29 08:30 Europe/Berlin" in reply.text
    await run(env, "digest time 21:00")  # the zone stays
    dest = await env.destination("C1")
    assert dest is not None and dest.next_digest_at == datetime(2026, 3, 28, 20, 0, tzinfo=UTC)


async def test_digest_frequency_weekly_off_and_daily(env: ChatEnv) -> None:
    reply = await run(env, "digest frequency weekly fri")
    assert reply.status == "ok"
    dest = await env.destination("C1")
    assert dest is not None and (dest.digest_frequency, dest.digest_weekday) == ("weekly", "fri")
    assert dest.next_digest_at == datetime(2026, 4, 3, 8, 0, tzinfo=UTC)
    await run(env, "digest frequency off")
    dest = await env.destination("C1")
    assert dest is not None and dest.digest_frequency == "off" and dest.next_digest_at is None
    reply = await run(env, "digest", manager=False)
    assert "Digests are off" in reply.text
    await run(env, "digest frequency daily")
    dest = await env.destination("C1")
    assert dest is not None and dest.next_digest_at == datetime(2026, 3, 29, 8, 0, tzinfo=UTC)


async def test_digest_bad_input(env: ChatEnv) -> None:
    reply = await run(env, "digest time 25:00")
    assert reply.status == "error" and "`25:00` is not a time" in reply.title and "HH:MM" in reply.text
    reply = await run(env, "digest time 08:00 Europe/Berln")
    assert "Unknown time zone `Europe/Berln`. Did you mean `Europe/Berlin`?" in reply.title
    reply = await run(env, "digest time 08:00 Tokyo")
    assert "Did you mean `Asia/Tokyo`?" in reply.title
    reply = await run(env, "digest frequency hourly")
    assert "`hourly` is not a frequency" in reply.title and "`weekly`" in reply.text
    reply = await run(env, "digest frequency daily fri")
    assert reply.status == "error"
    assert await env.rows(m.Destination) == []


def test_timezone_helpers() -> None:
    assert resolve_timezone("america/new_york") == "America/New_York"
    assert search_timezones("berl") == ["Europe/Berlin"]
    assert len(search_timezones("a")) == 25
    assert search_timezones("")[0] == "UTC"


async def test_digest_now_calls_the_runner_or_says_disabled(env: ChatEnv) -> None:
    reply = await run(env, "digest now")
    assert reply.status == "error" and "not enabled" in reply.title
    env.enable_digests()
    reply = await run(env, "digest now")
    assert reply.status == "error" and "follows no topic" in reply.title and env.digests.calls == []
    await run(env, "subscribe natsec")
    reply = await run(env, "digest now")
    dest = await env.destination("C1")
    assert dest is not None and env.digests.calls == [dest.id]
    assert reply.status == "ok" and "3 stories" in reply.title
    env.digests.entries = 0
    assert "No new stories" in (await run(env, "digest now")).title


# ---------------------------------------------------------------------------------------- digest options, alert cap
async def test_digest_quiet_on_and_off(env: ChatEnv) -> None:
    reply = await run(env, "digest", manager=False)
    assert "Quiet-day notice: off" in reply.text and "`/watch digest quiet on|off`" in reply.text
    reply = await run(env, "digest quiet on")
    assert reply.status == "ok" and not reply.ephemeral
    assert reply.title == "Quiet-day notice turned on." and "one-line “quiet day”" in reply.text
    dest = await env.destination("C1")
    assert dest is not None and dest.quiet_day_notice is True
    # Only that setting changed; the channel keeps its other defaults.
    assert (dest.repeat_alerted_in_digest, dest.alert_cap_per_hour, dest.digest_frequency) == (
        False,
        5,
        "daily",
    )
    assert "Quiet-day notice: on" in (await run(env, "digest", manager=False)).text
    reply = await run(env, "digest quiet OFF")
    assert reply.title == "Quiet-day notice turned off." and "posts nothing" in reply.text
    dest = await env.destination("C1")
    assert dest is not None and dest.quiet_day_notice is False


async def test_digest_repeats_on_and_off(env: ChatEnv) -> None:
    reply = await run(env, "digest repeats on")
    assert reply.status == "ok" and not reply.ephemeral
    assert "repeat stories already alerted here" in reply.title
    dest = await env.destination("C1")
    assert dest is not None and dest.repeat_alerted_in_digest is True and dest.quiet_day_notice is False
    assert "Already-alerted stories: on" in (await run(env, "digest", manager=False)).text
    reply = await run(env, "digest repeats off")
    assert "leave out stories already alerted here" in reply.title
    dest = await env.destination("C1")
    assert dest is not None and dest.repeat_alerted_in_digest is False


async def test_alerts_cap_sets_the_hourly_limit(env: ChatEnv) -> None:
    reply = await run(env, "alerts", manager=False)
    assert (
        reply.status == "info" and "at most 5 per hour" in reply.text and "`/watch alerts cap" in reply.text
    )
    assert await env.rows(m.Destination) == []  # reading leaves no trace
    reply = await run(env, "alerts cap 3")
    assert reply.status == "ok" and not reply.ephemeral
    assert reply.title == "Alert cap set to 3 per hour." and "next digest, with a note" in reply.text
    dest = await env.destination("C1")
    assert dest is not None and dest.alert_cap_per_hour == 3
    reply = await run(env, "alerts cap 0")
    assert reply.title == "Alerts turned off in this channel." and "every story goes to the next digest" in (
        reply.text
    )
    dest = await env.destination("C1")
    assert dest is not None and dest.alert_cap_per_hour == 0
    assert "off (cap 0)" in (await run(env, "alerts", manager=False)).text
    await run(env, "alerts cap 60")
    dest = await env.destination("C1")
    assert dest is not None and dest.alert_cap_per_hour == 60
    assert (dest.quiet_day_notice, dest.repeat_alerted_in_digest) == (False, False)


async def test_options_warn_when_digests_are_off(env: ChatEnv) -> None:
    await run(env, "digest frequency off")
    for text in ("alerts cap 0", "digest quiet on", "digest repeats on"):
        reply = await run(env, text)
        assert reply.status == "ok" and "Digests are off" in reply.text, text
        assert "`/watch digest frequency daily`" in reply.text
    reply = await run(env, "alerts cap 2", channel="C2")  # digests on: no warning
    assert "Digests are off" not in reply.text


@pytest.mark.parametrize(
    ("text", "expected", "accepted"),
    [
        ("digest quiet", "On or off?", "`/watch digest quiet on|off`"),
        ("digest quiet maybe", "`maybe` is not `on` or `off`", "`/watch digest quiet on|off`"),
        ("digest quiet on off", "`on off` is not `on` or `off`", "`/watch digest quiet on|off`"),
        ("digest repeats", "On or off?", "`/watch digest repeats on|off`"),
        ("digest repeats yes", "`yes` is not `on` or `off`", "`/watch digest repeats on|off`"),
        ("alerts cap", "Give one number", "from 0 to 60"),
        ("alerts cap 3 4", "Give one number", "from 0 to 60"),
        ("alerts cap many", "`many` is not a whole number", "from 0 to 60"),
        ("alerts cap 2.5", "`2.5` is not a whole number", "from 0 to 60"),
        ("alerts cap 61", "Alert cap `61` is out of range", "from 0 to 60"),
        ("alerts cap -1", "Alert cap `-1` is out of range", "0 = no alerts"),
    ],
)
async def test_option_bad_input_says_what_is_accepted_and_saves_nothing(
    env: ChatEnv, text: str, expected: str, accepted: str
) -> None:
    reply = await run(env, text)
    assert reply.status == "error" and reply.ephemeral
    assert expected in reply.title and accepted in reply.text, reply.text
    assert await env.rows(m.Destination) == []


async def test_option_bad_input_keeps_earlier_settings(env: ChatEnv) -> None:
    await run(env, "alerts cap 7")
    await run(env, "digest quiet on")
    assert (await run(env, "alerts cap 99")).status == "error"
    assert (await run(env, "digest quiet sometimes")).status == "error"
    assert (await run(env, "digest repeats")).status == "error"
    [dest] = await env.rows(m.Destination)
    assert (dest.alert_cap_per_hour, dest.quiet_day_notice, dest.repeat_alerted_in_digest) == (7, True, False)


async def test_store_refuses_an_out_of_range_cap(env: ChatEnv) -> None:
    from bot.store.chat import ChannelKey

    with pytest.raises(ValueError, match="from 0 to 60"):
        await env.store.set_delivery_options(ChannelKey("slack", "T1", "C1"), alert_cap_per_hour=61)
    assert await env.rows(m.Destination) == []


def test_parser_knows_the_new_actions() -> None:
    assert parse_text("alerts cap 3") == parse_text("ALERTS Cap 3")
    inv = parse_text("alerts cap 3")
    assert (inv.group, inv.action, inv.args) == ("alerts", "cap", ("3",))
    assert parse_text("digest quiet on").action == "quiet"
    assert parse_text("digest repeats off").action == "repeats"
    with pytest.raises(UsageError, match="`alerts` has no action `limit`"):
        parse_text("alerts limit 3")


# ---------------------------------------------------------------------------------------- sources
async def test_sources_add_list_remove(env: ChatEnv, feeds: FeedServer) -> None:
    url = feeds.url("/feed.xml")
    reply = await run(env, f"sources add {url}")
    assert reply.status == "ok" and "Now watching Policy Wire" in reply.title and "2 entries" in reply.text
    [source] = await env.rows(m.Source)
    assert (source.origin, source.owner_scope, source.url, source.enabled) == (
        "channel",
        "slack:T1:C1",
        url,
        True,
    )
    [link] = await env.rows(m.ChannelSource)
    assert link.source_id == source.id and link.added_by == "alice"

    assert (await run(env, f"sources add {url}")).title.startswith("This channel already watches")
    # Another channel shares the row instead of polling the feed twice.
    await run(env, f"sources add {url}", channel="C2")
    assert len(await env.rows(m.Source)) == 1 and len(await env.rows(m.ChannelSource)) == 2

    reply = await run(env, "sources list", manager=False)
    assert f"`{source.id}` Policy Wire" in reply.text and "waiting for its first poll" in reply.text

    reply = await run(env, f"sources remove {source.id}")
    assert reply.status == "ok" and "Stopped watching Policy Wire" in reply.title
    assert [s.enabled for s in await env.rows(m.Source)] == [True]  # C2 still uses it
    await run(env, f"sources remove {source.id}", channel="C2")
    assert [s.enabled for s in await env.rows(m.Source)] == [False]
    assert await env.rows(m.ChannelSource) == []
    reply = await run(env, f"sources add {url}")  # re-adding re-enables
    assert reply.status == "ok" and [s.enabled for s in await env.rows(m.Source)] == [True]


async def test_sources_add_refuses_non_feeds_and_bad_urls(env: ChatEnv, feeds: FeedServer) -> None:
    reply = await run(env, f"sources add {feeds.url('/page.html')}")
    assert reply.status == "error" and "is not a feed (not a feed: HTML page)" in reply.title
    assert "RSS, Atom or JSON feed" in reply.text
    reply = await run(env, f"sources add {feeds.url('/missing')}")
    assert "Could not fetch" in reply.title and "404" in reply.title
    reply = await run(env, "sources add ftp://example.com/feed")
    assert "not a usable URL" in reply.title and "http://" in reply.title
    reply = await run(env, "sources add")
    assert "exactly one feed URL" in reply.title
    assert await env.rows(m.Source) == [] and await env.rows(m.Destination) == []


async def test_sources_add_ssrf_guard_refuses_private_addresses(database_url: str, feeds: FeedServer) -> None:
    resolver = StaticResolver({"intranet.example": "10.0.0.5", "metadata.example": "169.254.169.254"})
    async with chat_env(database_url, allow_private=False, resolver=resolver) as env:
        for url, kind in (
            (feeds.url("/feed.xml"), "loopback address 127.0.0.1"),
            ("http://intranet.example/feed", "intranet.example resolves to private address 10.0.0.5"),
            (
                "http://metadata.example/latest",
                "metadata.example resolves to cloud metadata address 169.254.169.254",
            ),
        ):
            reply = await run(env, f"sources add {url}")
            assert reply.status == "error" and reply.ephemeral, url
            assert f"That URL is refused: {kind}." == reply.title
            assert "private, loopback" in reply.text
        assert await env.rows(m.Source) == []
        assert feeds.requests == []  # refused before any request was made


async def test_sources_limit_per_channel(env: ChatEnv, feeds: FeedServer) -> None:
    for n in range(3):
        feeds.add(f"/f{n}.xml", RSS)
        assert (await run(env, f"sources add {feeds.url(f'/f{n}.xml')}")).status == "ok"
    before = len(feeds.requests)
    reply = await run(env, f"sources add {feeds.url('/feed.xml')}")
    assert reply.status == "error" and "already has 3 sources, the most allowed" in reply.title
    assert len(feeds.requests) == before  # answered without fetching
    assert len(await env.rows(m.ChannelSource)) == 3 and len(await env.rows(m.Source)) == 3


async def test_sources_remove_bad_ids(env: ChatEnv) -> None:
    reply = await run(env, "sources remove abc")
    assert reply.status == "error" and "Give the id" in reply.title and "none" in reply.text
    reply = await run(env, "sources remove 99")
    assert reply.status == "error" and "no source with id `99`" in reply.title


# ---------------------------------------------------------------------------------------- keywords
async def test_keywords_add_list_remove(env: ChatEnv) -> None:
    reply = await run(env, 'keywords add nvidia "export controls" -whisky')
    assert reply.status == "ok" and "`nvidia`, `export controls`, `-whisky`" in reply.title
    rows = await env.rows(m.ChannelKeyword)
    assert sorted((k.kind, k.keyword) for k in rows) == [
        ("exclude", "whisky"),
        ("include", "export controls"),
        ("include", "nvidia"),
    ]
    reply = await run(env, "keywords add NVIDIA h20")
    assert "`h20`" in reply.title and "Already set: `NVIDIA`" in reply.text
    reply = await run(env, "keywords list", manager=False)
    assert "`nvidia`, `export controls`, `h20`" in reply.text and "`whisky`" in reply.text
    reply = await run(env, "keywords remove -whisky Nvidia gone")
    assert "`whisky`, `Nvidia`" in reply.title and "Not found: `gone`" in reply.text
    assert sorted(k.keyword for k in await env.rows(m.ChannelKeyword)) == ["export controls", "h20"]
    reply = await run(env, "keywords remove zzz")
    assert reply.status == "error" and "`export controls`" in reply.text


async def test_keywords_bad_input_and_limit_save_nothing(env: ChatEnv) -> None:
    assert "Which keywords?" in (await run(env, "keywords add")).title
    assert "unbalanced quotes" in (await run(env, 'keywords add "open')).title
    assert "at most 100 characters" in (await run(env, "keywords add " + "x" * 101)).title
    env.deps.max_keywords_per_channel = 2
    await run(env, "keywords add one")
    reply = await run(env, "keywords add two three")
    assert reply.status == "error" and "Nothing was added" in reply.title
    assert [k.keyword for k in await env.rows(m.ChannelKeyword)] == ["one"]  # not half-saved


# ---------------------------------------------------------------------------------------- search
async def _stories(env: ChatEnv) -> None:
    async with env.store.sessions.begin() as session:
        source = m.Source(
            key="feed:x",
            name="Wire",
            kind="feed",
            url="https://w.example/feed",
            next_poll_at=NOW,
            created_at=NOW,
        )
        session.add(source)
        await session.flush()
        for n in range(14):
            cluster = m.Cluster(id=n + 1, first_seen_at=NOW, last_seen_at=NOW)
            session.add(cluster)
            await session.flush()
            title = f"DeepSeek distillation claim {n}" if n % 2 == 0 else f"Chip export rules {n}"
            story = m.Story(
                id=n + 1,
                url_hash=f"h{n}",
                url=f"https://w.example/{n}",
                title=title,
                summary="Summary mentions 100% NVIDIA" if n == 3 else "",
                outlet="Wire",
                source_id=source.id,
                cluster_id=n + 1,
                published_at=NOW - timedelta(hours=n),
                first_seen_at=NOW,
            )
            session.add(story)
            await session.flush()
            if n % 2 == 0:
                session.add(m.Classification(story_id=story.id, topic="distillation", score=0.9, passed=True))


async def test_search_ranked_top_ten(env: ChatEnv) -> None:
    await _stories(env)
    reply = await run(env, "search deepseek DISTILLATION", manager=False)
    assert reply.status == "info" and reply.title.startswith("Best 7 stories")
    assert [link.url for link in reply.links] == [f"https://w.example/{n}" for n in range(0, 14, 2)]
    assert "distillation" in reply.links[0].detail and "2026-03-28" in reply.links[0].detail
    reply = await run(env, "search chip")
    assert len(reply.links) == 7
    reply = await run(env, "search nvidia 100%")  # summary match; % is literal, not a wildcard
    assert [link.url for link in reply.links] == ["https://w.example/3"]
    assert "No stored story matches" in (await run(env, "search quantum")).title
    assert (await run(env, "search")).status == "error"
    async with env.store.sessions.begin() as session:
        for n in range(14, 30):
            session.add(m.Cluster(id=n + 1, first_seen_at=NOW, last_seen_at=NOW))
            await session.flush()
            session.add(
                m.Story(
                    id=n + 1,
                    url_hash=f"h{n}",
                    url=f"https://w.example/{n}",
                    title="Chip news",
                    summary="",
                    outlet="Wire",
                    source_id=1,
                    cluster_id=n + 1,
                    published_at=NOW + timedelta(hours=n),
                    first_seen_at=NOW,
                )
            )
    reply = await run(env, "search chip")
    assert len(reply.links) == 10 and reply.links[0].url == "https://w.example/29"


# ---------------------------------------------------------------------------------------- status / help
async def test_status_shows_everything_about_the_channel(env: ChatEnv, feeds: FeedServer) -> None:
    reply = await run(env, "status", manager=False)
    assert "not set up yet" in reply.title
    await run(env, "subscribe natsec alerts 0.8")
    await run(env, "digest time 07:15 Asia/Tokyo")
    await run(env, "keywords add nvidia -whisky")
    await run(env, f"sources add {feeds.url('/feed.xml')}")
    async with env.store.sessions.begin() as session:
        source = (await session.scalars(select(m.Source))).one()
        source.failure_count, source.last_error = 3, "HTTP 404 Not Found"
        dest = (await session.scalars(select(m.Destination))).one()
        dest.active, dest.inactive_reason = False, "the bot was removed from the channel"
    reply = await run(env, "status", manager=False)
    text = reply.text
    assert reply.status == "info" and reply.ephemeral
    assert "Posting here is paused: the bot was removed from the channel" in text
    assert "`natsec` — alerts, min score 0.8" in text
    assert "Daily at 07:15 Asia/Tokyo; next: Sun 2026-03-29 07:15 Asia/Tokyo (in 10 h 15 min)" in text
    assert "Keywords: `nvidia`, `-whisky`" in text
    assert "Policy Wire — failing ×3: HTTP 404 Not Found" in text and "(1 of 3)" in text
    assert "Alerts: at most 5 per hour" in text
    assert "Quiet-day notice: off" in text and "Already-alerted stories: off" in text


async def test_status_shows_the_delivery_options(env: ChatEnv) -> None:
    await run(env, "alerts cap 0")
    await run(env, "digest quiet on")
    await run(env, "digest repeats on")
    text = (await run(env, "status", manager=False)).text
    assert "Alerts: off (cap 0) — every story goes to the next digest instead." in text
    assert "Quiet-day notice: on — a digest period without stories posts a one-line “quiet day”." in text
    assert "Already-alerted stories: on — the digest also lists stories already alerted" in text


async def test_help_lists_commands_and_the_needed_right(env: ChatEnv) -> None:
    reply = await run(env, "help", manager=False)
    assert reply.status == "info"
    for word in (
        "subscribe",
        "unsubscribe",
        "topics",
        "digest now",
        "sources add",
        "keywords",
        "search",
        "status",
        "`/watch digest quiet on|off`",
        "`/watch digest repeats on|off`",
        "`/watch alerts cap <0-60>`",
    ):
        assert word in reply.text
    assert MANAGER in reply.text
    assert (await run(env, "")).title == "Frontier Watch commands"


# ---------------------------------------------------------------------------------------- permissions
WRITE_COMMANDS = (
    "subscribe natsec",
    "unsubscribe natsec",
    "unsubscribe all",
    "digest now",
    "digest time 08:00",
    "digest frequency weekly",
    "sources add https://example.com/feed",
    "sources remove 1",
    "keywords add nvidia",
    "keywords remove nvidia",
    "digest quiet on",
    "digest repeats on",
    "alerts cap 3",
    "alerts cap 999",  # rights are checked before the arguments
)


@pytest.mark.parametrize("text", WRITE_COMMANDS)
async def test_configuration_needs_a_channel_manager(env: ChatEnv, text: str) -> None:
    env.enable_digests()
    reply = await run(env, text, manager=False)
    assert reply.status == "refused" and reply.ephemeral
    assert f"needs {MANAGER}" in reply.title and "open to everyone" in reply.text
    assert await env.rows(m.Destination) == [] and env.digests.calls == []


@pytest.mark.parametrize(
    "text",
    [
        "topics",
        "status",
        "search chips",
        "sources list",
        "keywords list",
        "help",
        "digest",
        "sources",
        "alerts",
    ],
)
async def test_reading_is_open_to_everyone(env: ChatEnv, text: str) -> None:
    reply = await run(env, text, manager=False)
    assert reply.status != "refused"


async def test_unexpected_errors_become_a_reply(env: ChatEnv) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database on fire")

    env.store.subscribe = broken  # type: ignore[method-assign]
    reply = await run(env, "subscribe natsec")
    assert reply.status == "error" and "nothing was changed" in reply.title and "fire" not in reply.text


def test_handlers_never_import_a_chat_platform() -> None:
    import subprocess
    import sys

    code = (
        "import sys, handlers, handlers.dispatch, handlers.sources, handlers.digest;"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'discord', 'slack_bolt', 'slack_sdk'});"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
