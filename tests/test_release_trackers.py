"""Model-release trackers end to end: `frontierwatch poll --once` against local stand-ins of the
Hugging Face Hub and GitHub stores tracker stories labelled `release`, and news about the same
release joins the tracker's cluster, so a channel gets one alert that says where it was seen first."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from tests.support.feedserver import FeedServer
from tests.support.hubserver import HubServer, synthetic_model

REPO = Path(__file__).resolve().parent.parent


def atom(repo: str, tags: list[tuple[str, datetime]], notes: str = "Release notes for {tag}") -> bytes:
    owner, name = repo.split("/")
    entries = "".join(
        f"<entry><id>tag:github.com,2008:Repository/1/{tag}</id><updated>{when.isoformat()}</updated>"
        f'<link rel="alternate" type="text/html" href="https://github.com/{repo}/releases/tag/{tag}"/>'
        f'<title>{tag}</title><content type="html">&lt;p&gt;{notes.format(tag=tag)}&lt;/p&gt;</content>'
        f"<author><name>{owner}</name></author></entry>"
        for tag, when in tags
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<id>tag:github.com,2008:https://github.com/{repo}/releases</id><title>Release notes from {name}</title>"
        f"<updated>{datetime.now(UTC).isoformat()}</updated>{entries}</feed>"
    ).encode()


def news(items: list[tuple[str, str, str]]) -> bytes:
    now = datetime.now(UTC)
    body = "".join(
        f"<item><guid>{guid}</guid><title>{title}</title><link>https://news.example/{guid}</link>"
        f"<description>{summary}</description><pubDate>{format_datetime(now - timedelta(minutes=10))}</pubDate></item>"
        for guid, title, summary in items
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Tech wire</title>{body}</channel></rss>'.encode()


async def cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=REPO,
    )
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


def make_due(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("update sources set next_poll_at = '2000-01-01 00:00:00'")


async def test_poll_once_stores_tracker_releases_and_clusters_them_with_the_news(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    async with HubServer() as hub, FeedServer() as wire:
        hub.add_models(
            [
                synthetic_model(
                    "deepseek-ai", "DeepSeek-V3.1", now - timedelta(days=30), params=671_000_000_000
                )
            ]
        )
        hub.add_release_feed(
            "deepseek-ai/DeepSeek-V3", atom("deepseek-ai/DeepSeek-V3", [("v1.0.0", now - timedelta(days=40))])
        )
        wire.add("/news.xml", news([("n0", "Chip stocks slip on tariff worries", "Markets fell.")]))
        db = tmp_path / "fw.sqlite3"
        sources = tmp_path / "sources.toml"
        sources.write_text(
            '[[sources]]\nname = "Hugging Face – DeepSeek"\nkind = "hf_models"\norg = "deepseek-ai"\n\n'
            '[[sources]]\nname = "GitHub – DeepSeek-V3"\nkind = "github_releases"\nrepo = "deepseek-ai/DeepSeek-V3"\n\n'
            f'[[sources]]\nname = "Tech wire"\nurl = "{wire.url("/news.xml")}"\n'
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FW_", "HF_"))}
        env.update(
            FW_DATABASE_URL=f"sqlite+aiosqlite:///{db}",
            FW_SOURCES_FILE=str(sources),
            FW_ALLOW_PRIVATE_SOURCES="true",
            FW_PARSE_WORKERS="-1",
            FW_HF_API_BASE=hub.base,
            FW_GITHUB_BASE=hub.base,
            COLUMNS="200",
        )
        code, out, _ = await cli("poll", "--once", env=env)
        assert code == 0 and "3 sources: 3 new" in out  # first poll: backlog, stored quietly

        # The lab publishes: a new repository on the Hub and a tagged release on GitHub.
        hub.add_models(
            [
                synthetic_model(
                    "deepseek-ai", "DeepSeek-V4", now - timedelta(minutes=30), params=1_200_000_000_000
                )
            ]
        )
        hub.add_release_feed(
            "deepseek-ai/DeepSeek-V3",
            # A tag alone is not a model release (code repositories tag too): the classifier decides,
            # from the notes, which here announce new weights.
            atom(
                "deepseek-ai/DeepSeek-V3",
                [("v1.1.0", now - timedelta(minutes=20)), ("v1.0.0", now - timedelta(days=40))],
                notes="New model weights: DeepSeek-V3 {tag} is available on Hugging Face.",
            ),
        )
        make_due(db)
        code, out, _ = await cli("poll", "--once", env=env)
        assert code == 0 and "0 failed" in out, out
        # An hour later the news reports the same release.
        wire.add(
            "/news.xml",
            news(
                [
                    (
                        "n1",
                        "DeepSeek releases V4, an open-weight model that rivals GPT-5",
                        "The Chinese lab published the weights of DeepSeek V4.",
                    ),
                    ("n0", "Chip stocks slip on tariff worries", "Markets fell."),
                ]
            ),
        )
        make_due(db)
        code, out, _ = await cli("poll", "--once", env=env)
        assert code == 0

        code, out, _ = await cli("stories", "--since", "48h", "--all", "--json", env=env)
        rows = {r["title"]: r for r in json.loads(out)}
        hub_story = rows["deepseek-ai releases new model DeepSeek-V4 on Hugging Face"]
        assert (
            "release" in hub_story["topics"]
            and hub_story["url"] == "https://huggingface.co/deepseek-ai/DeepSeek-V4"
        )
        github = next(r for t, r in rows.items() if t.startswith("deepseek-ai/DeepSeek-V3 release v1.1.0"))
        assert github["outlet"] == "GitHub"
        report = rows["DeepSeek releases V4, an open-weight model that rivals GPT-5"]
        assert report["cluster_id"] == hub_story["cluster_id"]  # one cluster: tracker first, then the news
        assert report["outlets"] == ["Hugging Face Hub", "Tech wire"]
        assert rows["Chip stocks slip on tariff worries"]["cluster_id"] != hub_story["cluster_id"]

        code, out, _ = await cli("digest", "--preview", "--since", "24h", "--topic", "release", env=env)
        assert code == 0
        headlines = [line for line in out.splitlines() if line.startswith("• ")]
        assert len([h for h in headlines if "V4" in h]) == 1  # one entry for the cluster
        assert any("deepseek-ai/DeepSeek-V3 release v1.1.0" in h for h in headlines)
        assert "first seen on the Hugging Face Hub at" in out and "covered by 1 outlet since" in out


def test_first_seen_line() -> None:
    from bot.digest.entries import first_seen_line

    at = datetime(2026, 11, 28, 9, 12, tzinfo=UTC)
    assert first_seen_line({"tracker": "hf_models"}, at, 5) == (
        "first seen on the Hugging Face Hub at 09:12 UTC, covered by 4 outlets since"
    )
    assert first_seen_line({"tracker": "github_releases"}, at, 2) == (
        "first seen on GitHub at 09:12 UTC, covered by 1 outlet since"
    )
    assert (
        first_seen_line({"tracker": "hf_models"}, at, 1) == "first seen on the Hugging Face Hub at 09:12 UTC"
    )
    assert first_seen_line({}, at, 3) == "" and first_seen_line(None, at, 3) == ""
