"""The web console without a browser: sign-in, session cookie, CSRF, the sign-in limit, the pages
and their actions, through aiohttp's test client on the application `serve` builds."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner
from sqlalchemy import select

from bot.console.auth import SignInLimiter, hash_password
from bot.settings import SettingsError, load_settings
from bot.store import models as m
from bot.store.db import create_engine, migrate
from bot.store.repo import Store
from bot.store.sign_ins import SignInFailures
from tests.support import newsdb
from tests.support.console_env import PASSWORD, Seeded, console_app, console_settings, seed

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF token in the page"
    return found.group(1)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    built = await newsdb.open_store(console_settings(tmp_path).database_url)
    try:
        yield built
    finally:
        await built.engine.dispose()


@pytest.fixture
async def seeded(store: Store) -> Seeded:
    return await seed(store)


async def make_client(tmp_path: Path, store: Store, **overrides: Any) -> TestClient[Any, Any]:
    client: TestClient[Any, Any] = TestClient(
        TestServer(console_app(console_settings(tmp_path, **overrides), store))
    )
    await client.start_server()
    return client


@pytest.fixture
async def client(tmp_path: Path, store: Store, seeded: Seeded) -> AsyncIterator[TestClient[Any, Any]]:
    c = await make_client(tmp_path, store)
    try:
        yield c
    finally:
        await c.close()


async def sign_in(client: TestClient[Any, Any], password: str = PASSWORD, **headers: str) -> Any:
    page = await client.get("/sign-in", headers=headers)
    token = csrf_of(await page.text())
    return await client.post(
        "/sign-in",
        data={"csrf_token": token, "password": password, "next": "/sources"},
        headers=headers,
        allow_redirects=False,
    )


async def token_from(client: TestClient[Any, Any], path: str) -> str:
    page = await client.get(path)
    assert page.status == 200
    return csrf_of(await page.text())


# ---------------------------------------------------------------------------------------- on / off
async def test_console_is_off_without_a_password(tmp_path: Path, store: Store) -> None:
    client = await make_client(tmp_path, store, web_password=None)
    try:
        for path in ("/", "/sign-in", "/sources", "/static/console/console.css"):
            assert (await client.get(path, allow_redirects=False)).status == 404, path
        health = await client.get("/healthz")
        assert health.status == 200 and await health.json() == {"status": "ok"}
    finally:
        await client.close()


async def test_pages_need_a_sign_in(client: TestClient[Any, Any]) -> None:
    for path in ("/sources", "/stories?topic=ip", "/channels", "/review", "/trends", "/trends/chart.png"):
        response = await client.get(path, allow_redirects=False)
        assert response.status == 303
        assert response.headers["Location"].startswith("/sign-in?next=")
    assert (await client.get("/", allow_redirects=False)).headers["Location"] == "/sources"
    assert (await client.get("/healthz")).status == 200  # the rest of the server is untouched


async def test_wrong_password_is_refused_and_right_one_signs_in(client: TestClient[Any, Any]) -> None:
    wrong = await sign_in(client, "not it")
    assert wrong.status == 401 and "Wrong password" in await wrong.text()
    right = await sign_in(client)
    assert right.status == 303 and right.headers["Location"] == "/sources"
    cookie = right.headers["Set-Cookie"]
    assert "fw_console=" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Secure" not in cookie  # plain http: a Secure cookie would never come back
    page = await client.get("/sources")
    assert page.status == 200 and "Dead Feed" in await page.text()
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY" and page.headers["Cache-Control"] == "no-store"


async def test_cookie_is_secure_behind_an_https_proxy(tmp_path: Path, store: Store, seeded: Seeded) -> None:
    client = await make_client(tmp_path, store, web_behind_proxy=True)
    try:
        token = await token_from(client, "/sign-in")
        proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
        response = await client.post(
            "/sign-in",
            data={"csrf_token": token, "password": PASSWORD},
            headers=proxied,
            allow_redirects=False,
        )
        assert response.status == 303 and "Secure" in response.headers["Set-Cookie"]
    finally:
        await client.close()


async def test_argon2_hash_signs_in(tmp_path: Path, store: Store, seeded: Seeded) -> None:
    client = await make_client(tmp_path, store, web_password=None, web_password_hash=hash_password(PASSWORD))
    try:
        assert (await sign_in(client, "wrong")).status == 401
        assert (await sign_in(client)).status == 303
        assert (await client.get("/channels")).status == 200
    finally:
        await client.close()


async def test_sign_in_redirects_only_within_the_site(client: TestClient[Any, Any]) -> None:
    page = await client.get("/sign-in")
    token = csrf_of(await page.text())
    for target in ("//evil.example/", "/\t/evil.example/", "/\n/evil.example/", "https://evil.example/"):
        response = await client.post(
            "/sign-in",
            data={"csrf_token": token, "password": PASSWORD, "next": target},
            allow_redirects=False,
        )
        assert response.status == 303 and response.headers["Location"] == "/", target
        page = await client.get("/sign-in")  # signed in: the form's token for the next try
        token = csrf_of(await page.text()) if "csrf_token" in await page.text() else token


async def test_sign_out_ends_the_session(client: TestClient[Any, Any]) -> None:
    await sign_in(client)
    token = await token_from(client, "/sources")
    out = await client.post("/sign-out", data={"csrf_token": token}, allow_redirects=False)
    assert out.status == 303
    assert (await client.get("/sources", allow_redirects=False)).status == 303


async def test_a_password_change_ends_existing_sign_ins(tmp_path: Path, store: Store, seeded: Seeded) -> None:
    first = await make_client(tmp_path, store)
    try:
        await sign_in(first)
        cookie = first.session.cookie_jar.filter_cookies(first.make_url("/"))["fw_console"].value
    finally:
        await first.close()
    second = await make_client(tmp_path, store, web_password="a new password")  # same FW_WEB_SECRET
    try:
        response = await second.get(
            "/sources", headers={"Cookie": f"fw_console={cookie}"}, allow_redirects=False
        )
        assert response.status == 303
    finally:
        await second.close()


# ---------------------------------------------------------------------------------------- CSRF
async def test_sign_in_without_or_with_a_wrong_csrf_token_is_refused(client: TestClient[Any, Any]) -> None:
    await client.get("/sign-in")
    missing = await client.post("/sign-in", data={"password": PASSWORD})
    assert missing.status == 403 and "security token" in await missing.text()
    wrong = await client.post("/sign-in", data={"password": PASSWORD, "csrf_token": "forged"})
    assert wrong.status == 403
    assert (await client.get("/sources", allow_redirects=False)).status == 303  # still signed out


async def test_actions_without_a_valid_csrf_token_change_nothing(
    client: TestClient[Any, Any], store: Store, seeded: Seeded
) -> None:
    await sign_in(client)
    for data in ({}, {"csrf_token": "forged"}):
        response = await client.post(f"/sources/{seeded.healthy}/pause", data=data)
        assert response.status == 403 and "Form refused" in await response.text()
    assert (await source_row(store, seeded.healthy)).paused_at is None


async def test_actions_need_a_sign_in(client: TestClient[Any, Any], store: Store, seeded: Seeded) -> None:
    token = await token_from(client, "/sign-in")  # a real token, but no sign-in
    response = await client.post(f"/sources/{seeded.healthy}/pause", data={"csrf_token": token})
    assert response.status == 403
    assert (await source_row(store, seeded.healthy)).paused_at is None


# ---------------------------------------------------------------------------------------- rate limit
async def test_sign_in_is_rate_limited_per_address(tmp_path: Path, store: Store, seeded: Seeded) -> None:
    client = await make_client(tmp_path, store, web_behind_proxy=True)
    attacker = {"X-Forwarded-For": "198.51.100.7"}
    try:
        for _ in range(5):
            assert (await sign_in(client, "guess", **attacker)).status == 401
        limited = await sign_in(client, **attacker)  # even the right password, while limited
        assert limited.status == 429
        assert 0 < int(limited.headers["Retry-After"]) <= 15 * 60
        assert "Too many attempts" in await limited.text()
        other = await sign_in(client, **{"X-Forwarded-For": "192.0.2.1"})
        assert other.status == 303
    finally:
        await client.close()


async def test_parallel_guesses_are_counted_before_the_hash_is_checked(
    tmp_path: Path, store: Store, seeded: Seeded
) -> None:
    """An argon2 check takes a while in a thread: twenty guesses sent at once must not all pass
    the limit before the first is counted."""
    client = await make_client(
        tmp_path, store, web_password=None, web_password_hash=hash_password(PASSWORD), web_behind_proxy=True
    )
    attacker = {"X-Forwarded-For": "198.51.100.9"}
    try:
        page = await client.get("/sign-in", headers=attacker)
        token = csrf_of(await page.text())

        async def guess(n: int) -> int:
            response = await client.post(
                "/sign-in",
                data={"csrf_token": token, "password": f"guess {n}"},
                headers=attacker,
                allow_redirects=False,
            )
            return response.status

        statuses = await asyncio.gather(*(guess(n) for n in range(20)))
        assert statuses.count(401) <= 5 and statuses.count(429) >= 15, statuses
    finally:
        await client.close()


async def test_limiter_forgets_failures_after_the_window() -> None:
    clock = [datetime(2026, 12, 1, tzinfo=UTC)]
    limiter = SignInLimiter(max_failures=2, window=60, clock=lambda: clock[0])
    assert await limiter.attempt("a") == 0
    clock[0] += timedelta(seconds=30)
    assert await limiter.attempt("a") == 0
    assert await limiter.attempt("a") == 31  # refused, and not counted
    clock[0] += timedelta(seconds=31)
    assert await limiter.attempt("a") == 0  # the first failure aged out
    await limiter.succeeded("a")
    assert await limiter.attempt("a") == 0


async def test_replicas_share_one_sign_in_limit(database_url: str) -> None:
    """Each replica of the console counts the failures of all of them: three guesses allowed in
    all, not three per replica, even when they arrive at once."""
    engine = create_engine(database_url)
    await migrate(engine)
    try:
        clock = [datetime(2026, 12, 1, tzinfo=UTC)]
        replicas = [
            SignInLimiter(SignInFailures(engine), max_failures=3, window=60, clock=lambda: clock[0])
            for _ in range(2)
        ]
        a, b = replicas
        assert [await r.attempt("198.51.100.7") for r in (a, b, a)] == [0, 0, 0]
        assert await b.attempt("198.51.100.7") == 61  # the fourth guess, on the other replica
        rows = await failure_rows(engine)
        assert await a.attempt("198.51.100.7") == 61 and await failure_rows(engine) == rows  # no write
        assert await a.attempt("192.0.2.1") == 0  # another address has its own count
        clock[0] += timedelta(seconds=61)
        assert await b.attempt("198.51.100.7") == 0  # the first three aged out
        await a.succeeded("198.51.100.7")
        # Twenty guesses at once over both replicas: three pass.
        clock[0] += timedelta(seconds=61)
        waits = await asyncio.gather(*(replicas[n % 2].attempt("203.0.113.5") for n in range(20)))
        assert waits.count(0) == 3, waits
        # The table holds one window: rows older than it went as new ones came.
        left = await failure_rows(engine)
        assert left and min(left) > clock[0] - timedelta(seconds=60)
    finally:
        await engine.dispose()


async def failure_rows(engine: Any) -> list[datetime]:
    async with engine.connect() as connection:
        return list((await connection.execute(select(m.SignInFailure.at))).scalars().all())


# ---------------------------------------------------------------------------------------- pages
async def source_row(store: Store, source_id: int) -> m.Source:
    async with store.sessions() as session:
        row = await session.get(m.Source, source_id)
        assert row is not None
        return row


async def test_sources_page_shows_each_state(client: TestClient[Any, Any], seeded: Seeded) -> None:
    await sign_in(client)
    html = await (await client.get("/sources")).text()

    def row(source_id: int) -> str:
        found = re.search(rf'<tr id="source-{source_id}" data-state="([^"]+)">(.*?)</tr>', html, re.S)
        assert found, source_id
        return found.group(1) + found.group(2)

    assert row(seeded.healthy).startswith("healthy") and "HTTP 200" in row(seeded.healthy)
    assert row(seeded.backing_off).startswith("backing off") and "HTTP 503 Service Unavailable" in row(
        seeded.backing_off
    )
    assert row(seeded.broken).startswith("broken") and "does not resolve" in row(seeded.broken)
    assert row(seeded.paused).startswith("paused") and "alice (operator)" in row(seeded.paused)
    assert row(seeded.fresh).startswith("new") and "never polled" in row(seeded.fresh)
    # Reuters carried one story this week: the lead (the other outlets' stories are theirs).
    assert re.search(r'data-label="Stories 7 d" class="num">1<', row(seeded.healthy))
    filtered = await (await client.get("/sources?state=broken")).text()
    assert "Dead Feed" in filtered and "Flaky Wire" not in filtered


async def test_pause_resume_and_poll_now(client: TestClient[Any, Any], store: Store, seeded: Seeded) -> None:
    await sign_in(client)
    token = await token_from(client, "/sources")
    paused = await client.post(f"/sources/{seeded.healthy}/pause", data={"csrf_token": token})
    assert "Paused Reuters" in await paused.text()
    row = await source_row(store, seeded.healthy)
    assert row.paused_at is not None and row.paused_by == "the web console"
    refused = await client.post(f"/sources/{seeded.healthy}/poll-now", data={"csrf_token": token})
    assert "is paused: resume it first" in await refused.text()
    resumed = await client.post(f"/sources/{seeded.healthy}/resume", data={"csrf_token": token})
    assert "Resumed Reuters" in await resumed.text()
    assert (await source_row(store, seeded.healthy)).paused_at is None
    later = datetime.now(UTC) + timedelta(hours=1)
    async with store.sessions.begin() as session:
        source = await session.get(m.Source, seeded.broken)
        assert source is not None
        source.next_poll_at = later
    before = datetime.now(UTC)
    due = await client.post(f"/sources/{seeded.broken}/poll-now", data={"csrf_token": token})
    assert "is due now" in await due.text()
    assert (await source_row(store, seeded.broken)).next_poll_at <= datetime.now(UTC)
    claimed = await store.claim_due_sources(timedelta(seconds=45), now=before + timedelta(seconds=1))
    assert seeded.broken in {c.id for c in claimed}  # any replica's poller picks it up
    missing = await client.post("/sources/999999/pause", data={"csrf_token": token})
    assert "no longer exists" in await missing.text()


async def test_stories_page_filters_and_shows_topics_outlets_and_deliveries(
    client: TestClient[Any, Any], seeded: Seeded
) -> None:
    await sign_in(client)
    html = await (await client.get("/stories?topic=distillation")).text()
    assert "DeepSeek accused of distilling" in html and "Routine AI policy" not in html
    lead = html[html.index(f'id="story-{seeded.lead_story}"') :]
    lead = lead[: lead.index("</li>\n\n") if "</li>\n\n" in lead else len(lead)]
    assert "0.91" in lead and "teacher model" in lead  # score and evidence
    assert "The Verge" in lead  # the cluster's other outlet
    assert "discord #ai-news" in lead and "sent" in lead and "Slack: channel_not_found" in lead
    official = await (await client.get("/stories?official=yes")).text()
    assert "export controls" in official and "DeepSeek" not in official
    searched = await (await client.get("/stories?q=export+controls")).text()
    assert "Commerce tightens export controls" in searched and "DeepSeek" not in searched
    old = seeded.release_day
    dated = await (await client.get(f"/stories?from={old:%Y-%m-%d}&to={old:%Y-%m-%d}")).text()
    assert "Open-weights model released" in dated and "DeepSeek" not in dated
    bad = await (await client.get('/stories?q="unclosed&from=yesterday')).text()
    assert "quote is not closed" in bad and "is not a date" in bad


async def test_stories_page_paginates(client: TestClient[Any, Any]) -> None:
    await sign_in(client)
    first = await (await client.get("/stories?topic=natsec")).text()
    assert "page 1 of 2" in first and 'rel="next"' in first
    second = await (await client.get("/stories?topic=natsec&page=2")).text()
    assert "page 2 of 2" in second and 'rel="prev"' in second
    titles = set(re.findall(r"Routine AI policy note number \d+", first + second))
    assert len(titles) == 30


async def test_stories_page_says_what_is_wrong_with_odd_filters(client: TestClient[Any, Any]) -> None:
    await sign_in(client)
    for query, said in (
        ("to=9999-12-31", "out of range"),
        ("from=0001-01-01", "out of range"),
        ("to=yesterday", "is not a date"),
        ("page=99999999999999999999", ""),
    ):
        response = await client.get(f"/stories?{query}")
        assert response.status == 200, query
        assert said in await response.text(), query


async def test_channels_page_and_digest_preview(client: TestClient[Any, Any], seeded: Seeded) -> None:
    await sign_in(client)
    html = await (await client.get("/channels")).text()
    assert "discord #ai-news" in html and "+deepseek" in html and "−crypto" in html
    assert "Europe/Paris" in html and "3 per hour" in html
    assert "paused" in html and "unreachable" in html and "Discord: Unknown Channel" in html
    assert "Slack: channel_not_found" in html  # the slack channel's last error
    detail = await (await client.get(f"/channels/{seeded.discord}")).text()
    assert "Frontier Watch digest" in detail
    assert "DeepSeek accused" not in detail.split("<h3>Text</h3>")[1].split("</pre>")[0]  # alerted already
    assert "Commerce tightens export controls" in detail  # natsec, digest mode, score 0.88 ≥ 0.7
    assert "&#34;embeds&#34;" in detail or "&quot;embeds&quot;" in detail  # Discord's request body
    assert (await client.get("/channels/424242")).status == 404


async def test_next_digest_preview_has_text_and_discord_bodies(
    tmp_path: Path, store: Store, seeded: Seeded
) -> None:
    """What the channel page shows, from bot/delivery/preview.py (which `digest --preview` uses too)."""
    from bot.delivery.preview import next_digest_preview

    preview = await next_digest_preview(
        store.sessions, seeded.discord, ("distillation", "ip", "natsec", "release"), datetime.now(UTC)
    )
    assert preview is not None and preview.platform == "discord"
    assert preview.entries >= 1 and len(preview.bodies) >= 1 and "embeds" in preview.bodies[0]
    assert preview.text.startswith("Frontier Watch digest")


# ---------------------------------------------------------------------------------------- review
def review_item(html: str, queue: str, story_id: int) -> str:
    found = re.search(
        rf'<li class="story review-item[^"]*" id="{queue}-{story_id}">(.*?)</li>\n\s*(?:<li class="story|</ol>)',
        html,
        re.S,
    )
    assert found, f"{queue}-{story_id} not in the page"
    return found.group(1)


async def test_review_page_shows_both_queues_with_scores_evidence_and_feedback(
    client: TestClient[Any, Any], seeded: Seeded
) -> None:
    await sign_in(client)
    html = await (await client.get("/review")).text()
    assert "frontierwatch train --feedback" in html
    near = html[html.index('id="near"') : html.index('id="feedback"')]
    assert near.index(f'id="near-{seeded.closest_story}"') < near.index(f'id="near-{seeded.lead_story}"')
    closest = review_item(html, "near", seeded.closest_story)
    assert "Model weights posted to a torrent site" in closest and "Hugging Face" in closest
    assert "0.52" in closest and "/ 0.50" in closest and "weights" in closest  # score, threshold, evidence
    assert "0.02 from a threshold" in closest
    judged = review_item(html, "feedback", seeded.judged_story)
    assert "Chatbot wins a chess tournament" in judged and "reader-7" in judged and "not relevant" in judged
    assert "should be ip" in html  # the other click: "wrong topic", with the reader's topic
    for topic in ("distillation", "ip", "natsec", "release"):
        assert f'name="label" value="{topic}"' in closest
    assert 'name="label" value=""' in closest and 'name="topic" value="ip"' in closest


async def test_one_click_label_is_stored_leaves_the_queue_and_is_exported(
    client: TestClient[Any, Any], store: Store, seeded: Seeded, tmp_path: Path
) -> None:
    from bot.cli import main
    from bot.store.review import ReviewStore

    await sign_in(client)
    token = await token_from(client, "/review")
    labelled = await client.post(
        f"/review/{seeded.closest_story}/label", data={"csrf_token": token, "label": "release"}
    )
    html = await labelled.text()
    assert labelled.status == 200 and "Labelled “Model weights posted to a torrent site”: release." in html
    assert f'id="near-{seeded.closest_story}"' not in html  # left the queue
    item = await ReviewStore(store.engine, ("release",)).item(seeded.closest_story)
    assert item is not None and item.label == ("release",) and item.labelled_by == "the web console"

    # "No topic" (an empty one-click value), and the ticked boxes for several topics.
    await client.post(f"/review/{seeded.judged_story}/label", data={"csrf_token": token, "label": ""})
    ticked = await client.post(
        f"/review/{seeded.lead_story}/label",
        data=[("csrf_token", token), ("topic", "distillation"), ("topic", "ip")],
    )
    assert "distillation, ip." in await ticked.text()

    # `frontierwatch feedback export` writes them, which `train --feedback` reads. The command
    # runs its own event loop, so it runs in a thread of its own.
    env = {"FW_DATABASE_URL": console_settings(tmp_path).database_url}
    exported = await asyncio.to_thread(CliRunner().invoke, main, ["feedback", "export"], env=env)
    assert exported.exit_code == 0, exported.output
    records = {r["title"]: r for r in map(json.loads, exported.stdout.splitlines())}
    assert records["Model weights posted to a torrent site"]["topics"] == ["release"]
    assert records["Model weights posted to a torrent site"]["feedback"]["source"] == "console"
    assert records["Chatbot wins a chess tournament"]["hard_negative"] is True
    assert records["DeepSeek accused of distilling a frontier model"]["topics"] == ["distillation", "ip"]


async def test_a_wrong_label_says_why_and_stores_nothing(
    client: TestClient[Any, Any], store: Store, seeded: Seeded
) -> None:
    from bot.store.review import ReviewStore

    await sign_in(client)
    token = await token_from(client, "/review")
    unknown = await client.post(
        f"/review/{seeded.closest_story}/label", data={"csrf_token": token, "label": "weather"}
    )
    html = await unknown.text()
    assert unknown.status == 400
    assert "Not labelled: unknown topic &#39;weather&#39;" in html and "Nothing was stored." in html
    assert f'class="story review-item has-error" id="near-{seeded.closest_story}"' in html
    nothing = await client.post(f"/review/{seeded.closest_story}/label", data={"csrf_token": token})
    assert nothing.status == 400 and "tick at least one topic" in await nothing.text()
    gone = await client.post("/review/999999/label", data={"csrf_token": token, "label": "ip"})
    assert gone.status == 400 and "no longer stored" in await gone.text()
    assert await ReviewStore(store.engine).labels_count() == 0


async def test_the_label_form_needs_a_csrf_token_and_a_sign_in(
    client: TestClient[Any, Any], store: Store, seeded: Seeded
) -> None:
    from bot.store.review import ReviewStore

    signed_out_token = await token_from(client, "/sign-in")
    signed_out = await client.post(
        f"/review/{seeded.closest_story}/label", data={"csrf_token": signed_out_token, "label": "ip"}
    )
    assert signed_out.status == 403 and "Signed out" in await signed_out.text()
    await sign_in(client)
    for data in ({"label": "ip"}, {"csrf_token": "forged", "label": "ip"}):
        response = await client.post(f"/review/{seeded.closest_story}/label", data=data)
        assert response.status == 403 and "Form refused" in await response.text()
    assert await ReviewStore(store.engine).labels_count() == 0


# ---------------------------------------------------------------------------------------- trends
async def test_trends_page_has_the_chart_its_numbers_and_top_outlets_and_names(
    client: TestClient[Any, Any],
) -> None:
    await sign_in(client)
    html = await (await client.get("/trends")).text()
    assert '<img src="/trends/chart.png?days=90"' in html
    assert 'alt="Events per topic per day, last 90 days: events per day from' in html
    daily = html[html.index('<table class="compact daily">') :]
    assert len(re.findall(r'<tr><th scope="row">\d{4}-\d\d-\d\d</th>', daily)) == 90
    # The seeded events: natsec's outlets, and a name from the release headlines.
    natsec = html[html.index('id="topic-natsec"') :]
    natsec = natsec[: natsec.index("</article>")]
    assert "Policy Digest" in natsec and "The Verge" in natsec
    release = html[html.index('id="topic-release"') :]
    release = release[: release.index("</article>")]
    assert re.search(r"<td>(Mistral|DeepSeek|OpenAI|Nvidia|Anthropic|Huawei)</td>", release), release
    month = await (await client.get("/trends?days=30")).text()
    assert '<img src="/trends/chart.png?days=30"' in month
    assert len(re.findall(r'<tr><th scope="row">', month[month.index('class="compact daily"') :])) == 30
    assert "last 30 days" in month and 'aria-current="true">last 30 days' in month


async def test_trends_chart_is_a_png_of_the_counts(client: TestClient[Any, Any]) -> None:
    await sign_in(client)
    chart = await client.get("/trends/chart.png")
    body = await chart.read()
    assert chart.status == 200 and chart.headers["Content-Type"] == "image/png"
    assert body.startswith(b"\x89PNG\r\n\x1a\n") and len(body) > 10_000
    width, height = int.from_bytes(body[16:20], "big"), int.from_bytes(body[20:24], "big")
    assert (width, height) == (1000, 500)
    month = await (await client.get("/trends/chart.png?days=30")).read()
    assert month.startswith(b"\x89PNG") and month != body  # another window, another chart


# ---------------------------------------------------------------------------------------- settings, CLI
def test_settings_refuse_ambiguous_or_weak_console_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FW_WEB_PASSWORD", "pw")
    monkeypatch.setenv("FW_WEB_PASSWORD_HASH", hash_password("pw"))
    with pytest.raises(SettingsError, match="not both"):
        load_settings()
    monkeypatch.delenv("FW_WEB_PASSWORD")
    monkeypatch.setenv("FW_WEB_PASSWORD_HASH", "plain text")
    with pytest.raises(SettingsError, match=r"FW_WEB_PASSWORD_HASH.*argon2") as info:
        load_settings()
    assert "plain text" not in str(info.value)
    monkeypatch.delenv("FW_WEB_PASSWORD_HASH")
    monkeypatch.setenv("FW_WEB_SECRET", "short")
    with pytest.raises(SettingsError, match=r"FW_WEB_SECRET.*32") as info:
        load_settings()
    assert "short" not in str(info.value).replace("too short", "")


def test_hash_password_command_reads_stdin_and_prints_a_verifiable_hash() -> None:
    from argon2 import PasswordHasher

    from bot.cli import main

    result = CliRunner().invoke(main, ["web", "hash-password"], input="s3cret pass\n")
    assert result.exit_code == 0, result.output
    printed = result.stdout.strip()
    assert printed.startswith("$argon2id$") and "s3cret" not in printed
    assert PasswordHasher().verify(printed, "s3cret pass")
    empty = CliRunner().invoke(main, ["web", "hash-password"], input="\n")
    assert empty.exit_code == 2
