"""The command line as a user runs it: a subprocess, real settings from the environment."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.feedserver import FeedServer

REPO = Path(__file__).resolve().parent.parent

FEED = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Policy wire</title>
<item><title>US tightens export controls on Nvidia AI chips to China</title><link>https://wire.example/chips</link>
<guid>chips</guid><pubDate>Sat, 28 Nov 2026 09:00:00 GMT</pubDate></item>
<item><title>Distillery expands whisky distillation capacity</title><link>https://wire.example/whisky</link>
<guid>whisky</guid><pubDate>Sat, 28 Nov 2026 08:00:00 GMT</pubDate></item>
</channel></rss>"""


async def run_cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
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


def base_env(tmp_path: Path, sources: str = "") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FW_")}
    sources_file = tmp_path / "sources.toml"
    sources_file.write_text(sources)
    env.update(
        FW_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'cli.sqlite3'}",
        FW_SOURCES_FILE=str(sources_file),
        FW_PARSE_WORKERS="-1",
        COLUMNS="200",
    )
    return env


async def test_every_command_has_help(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    for command in (
        ["run"],
        ["poll"],
        ["stories"],
        ["search"],
        ["classify"],
        ["eval"],
        ["sources", "list"],
        ["sources", "check"],
        ["sources", "import"],
        ["sources", "export"],
        ["migrate"],
        ["demo"],
    ):
        code, out, _ = await run_cli(*command, "--help", env=env)
        assert code == 0 and "Usage:" in out, command


async def test_search_prints_ranked_json(tmp_path: Path) -> None:
    from tests.support.newsdb import add_story, open_store

    env = base_env(tmp_path)
    store = await open_store(env["FW_DATABASE_URL"])
    try:
        await add_story(store, "US tightens export controls on AI chips", topics={"natsec": 0.9})
        await add_story(store, "Controls on what labs export", topics={"natsec": 0.2})
        await add_story(store, "Officials said so", topics={})
    finally:
        await store.engine.dispose()
    code, out, err = await run_cli("search", '"export controls"', "topic:natsec", "--json", env=env)
    assert code == 0, err
    hits = json.loads(out)
    assert [h["title"] for h in hits] == ["US tightens export controls on AI chips"]
    assert hits[0]["topics"] == ["natsec"] and hits[0]["url"].startswith("https://")
    code, out, _ = await run_cli("search", "ai", env=env)
    assert code == 0 and "export controls on AI chips" in out and "Officials" not in out


async def test_migrate_reports_the_revision(tmp_path: Path) -> None:
    code, out, _ = await run_cli("migrate", env=base_env(tmp_path))
    from bot.store.db import head_revision

    assert code == 0 and f"is at revision {head_revision()}" in out


async def test_sources_check_and_list(tmp_path: Path) -> None:
    async with FeedServer() as server:
        server.add("/wire.xml", FEED)
        server.add("/page", b"<html><body>hello</body></html>", content_type="text/html")
        env = base_env(tmp_path, f'[[sources]]\nname = "Policy wire"\nurl = "{server.url("/wire.xml")}"\n')
        # Loopback is refused by the SSRF guard unless private sources are allowed.
        code, out, err = await run_cli("sources", "check", server.url("/wire.xml"), env=env)
        assert code == 1 and "refused" in err and "127.0.0.1" in err and out == ""  # errors go to stderr
        env["FW_ALLOW_PRIVATE_SOURCES"] = "1"
        code, out, _ = await run_cli("sources", "check", server.url("/wire.xml"), env=env)
        assert code == 0 and "Policy wire: 2 entries" in out and "[natsec]" in out and "[-]" in out
        code, out, err = await run_cli("sources", "check", server.url("/page"), env=env)
        assert code == 1 and "not a feed" in err
        code, out, _ = await run_cli("sources", "list", env=env)
        assert code == 0 and "Policy wire" in out and "never polled" in out
        header, *lines = out.splitlines()  # piped: plain tab-separated lines, not a wrapped table
        assert header.split("\t")[:3] == ["id", "name", "kind"] and lines[0].split("\t")[1] == "Policy wire"
        code, out, _ = await run_cli("sources", "list", "--json", env=env)
        [record] = [json.loads(line) for line in out.splitlines()]
        assert record["name"] == "Policy wire" and record["state"] == "never polled"
        await run_cli("poll", "--once", env=env)
        code, out, _ = await run_cli("sources", "list", env=env)
        assert "ok (200)" in out


async def test_sources_disable_and_enable(tmp_path: Path) -> None:
    env = base_env(
        tmp_path,
        '[[sources]]\nname = "Federal Register"\nurl = "https://federalregister.example/feed"\n'
        '[[sources]]\nname = "Wire"\nurl = "https://wire.example/feed"\n',
    )
    env["USER"] = env["LOGNAME"] = "carol"
    code, out, err = await run_cli("sources", "disable", "federal register", env=env)
    assert code == 0, err
    assert out.strip() == "paused Federal Register (id 1): not polled until `frontierwatch sources enable 1`"
    code, out, _ = await run_cli("sources", "disable", "1", env=env)
    assert code == 0 and out.startswith(
        "Federal Register (id 1) was already paused by carol (operator) since "
    )
    code, out, _ = await run_cli("sources", "list", "--json", env=env)
    states = {r["name"]: r["state"] for r in map(json.loads, out.splitlines())}
    assert states["Federal Register"].startswith("paused by carol (operator) 20")
    assert states["Wire"] == "never polled"
    code, out, _ = await run_cli("sources", "enable", "Federal Register", env=env)
    assert code == 0 and out.strip() == "resumed Federal Register (id 1): due for a poll now"
    code, out, _ = await run_cli("sources", "enable", "1", env=env)
    assert code == 0 and "was not paused by the operator" in out
    code, out, err = await run_cli("sources", "disable", "Federal Registr", env=env)
    assert code == 2 and out == ""
    assert err.strip() == "error: no source named 'Federal Registr'; did you mean 'Federal Register'?"


async def test_bad_sources_file_is_one_clear_line(tmp_path: Path) -> None:
    env = base_env(tmp_path, '[[sources]]\nname = "x"\nurl = "ftp://nope"\n')
    code, _out, err = await run_cli("poll", "--once", env=env)
    assert code == 2 and "url" in err and "http" in err and err.strip().count("\n") == 0


async def test_demo_prints_alerts_and_a_digest(tmp_path: Path) -> None:
    code, out, _ = await run_cli("demo", env=base_env(tmp_path))
    assert code == 0, out
    assert "nothing announced (no first-run flood)" in out
    # The second poll announces new relevant stories, within the console's hourly alert cap: the
    # demo goes through the same router, outbox and renderer as `run`.
    assert 1 <= out.count("● NEW [") <= 5
    assert re.search(r"^Frontier Watch digest — \w{3} \d{1,2} \w{3} \d{4} — \d+ stories$", out, re.M), out
    assert "## National security (" in out and "## natsec" not in out and "why:" in out
    assert "over this channel's alert limit (5 per hour) are included here instead." in out
    # One entry per story, naming every outlet that ran it (issue 10, item 5); two explainers of
    # one technique are not one story.
    entries = [line for line in out.splitlines() if "also:" in line]
    for outlets in (
        ("Bear & Wolf", "Barker Brettell", "The Outpost (CNET)"),
        ("RedCensor", "GN Crypto", "World of Software"),
        ("ai.jp.net", "Latent Machine"),
    ):
        assert any(all(outlet in line for outlet in outlets) for line in entries), (outlets, entries)
    assert not any(name in line for line in entries for name in ("24 AI News", "EHGA", "Calmops")), entries


def test_an_overlong_duration_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    env = {"FW_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'x.sqlite3'}", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "bot", "stories", "--since", "99999999w"],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "is too long" in done.stderr


def test_an_upper_case_scheme_is_a_valid_source_url(tmp_path: Path) -> None:
    from bot.sources.config import load_sources

    path = tmp_path / "sources.toml"
    path.write_text('[[sources]]\nname = "Upper"\nurl = "HTTPS://Example.com/feed.xml"\n')
    [spec] = load_sources(path, default_interval=30)
    assert spec.url.lower().startswith("https://")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[source]]\nname = "A"\nurl = "https://a.example/feed"\n', r"did you mean \[\[sources\]\]"),
        (
            '[[sources]]\nname = "A"\nurl = "https://a.example/1"\n[[sources]]\nname = "a"\nurl = "https://a.example/2"\n',
            "the name is already used by #1",
        ),
        ('[[sources]]\nname = "A"\nurl = "https://a.example/my feed"\n', "white space"),
    ],
)
def test_sources_file_mistakes_are_named(tmp_path: Path, text: str, message: str) -> None:
    from bot.sources.config import SourcesConfigError, load_sources

    path = tmp_path / "sources.toml"
    path.write_text(text)
    with pytest.raises(SourcesConfigError, match=message):
        load_sources(path)
    path.write_bytes(b'[[sources]]\nname = "\xff"\n')
    with pytest.raises(SourcesConfigError, match="not UTF-8"):
        load_sources(path)


def _poll(tmp_path: Path, sources: str, *args: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "sources.toml"
    path.write_text(sources)
    env = {
        "FW_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'p.sqlite3'}",
        "FW_SOURCES_FILE": str(path),
        "FW_ALLOW_PRIVATE_SOURCES": "true",
        "FW_PARSE_WORKERS": "-1",
        "PATH": "/usr/bin:/bin",
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "bot", "poll", "--once", *args],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=120,
    )  # fmt: skip


async def test_poll_once_exit_codes_and_what_it_waits_for(tmp_path: Path) -> None:
    async with FeedServer() as server:
        server.add("/ok.xml", b'<rss version="2.0"><channel><title>t</title><item><title>x</title>'
                   b"<link>https://x.example/1</link></item></channel></rss>")  # fmt: skip
        server.add("/down.xml", b"no", status=503, content_type="text/plain")
        dead = f'[[sources]]\nname = "Down"\nurl = "{server.url("/down.xml")}"\n'
        ok = f'[[sources]]\nname = "Ok"\nurl = "{server.url("/ok.xml")}"\n'
        dead_dir = tmp_path / "a"
        dead_dir.mkdir()
        failed = await asyncio.to_thread(_poll, dead_dir, dead)
        assert failed.returncode == 1 and "every source failed" in failed.stderr
        mixed_dir = tmp_path / "b"
        mixed_dir.mkdir()
        first = await asyncio.to_thread(_poll, mixed_dir, dead + "\n" + ok)
        assert first.returncode == 0, first.stderr
        again = await asyncio.to_thread(_poll, mixed_dir, dead + "\n" + ok)
        assert again.returncode == 0 and "No source is due. The next poll is" in again.stdout
        forced = await asyncio.to_thread(_poll, mixed_dir, dead + "\n" + ok, "--source", "Ok")
        assert forced.returncode == 0 and "Ok" in forced.stdout and "Down" not in forced.stdout
        everything = await asyncio.to_thread(_poll, mixed_dir, dead + "\n" + ok, "--all")
        assert "Ok" in everything.stdout and "Down" in everything.stdout
        unknown = await asyncio.to_thread(_poll, mixed_dir, dead + "\n" + ok, "--source", "ok")
        assert unknown.returncode == 2 and "did you mean 'Ok'?" in unknown.stderr


def test_classify_fails_when_no_line_could_be_classified_and_digest_format_needs_preview(
    tmp_path: Path,
) -> None:
    env = {"FW_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'c.sqlite3'}", "PATH": "/usr/bin:/bin"}
    bad = subprocess.run(
        [sys.executable, "-m", "bot", "classify"], input='{"title": 5}\n{not json\n',
        capture_output=True, text=True, env=env, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert bad.returncode == 1 and "none of the 2 input lines" in bad.stderr
    assert len(bad.stdout.splitlines()) == 2
    fmt = subprocess.run(
        [sys.executable, "-m", "bot", "digest", "--format", "slack-json"],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert fmt.returncode == 2 and "only apply to --preview" in fmt.stderr


@pytest.mark.parametrize("command", [["poll", "--once"], ["run"], ["stories"]])
async def test_an_unusable_sqlite_location_is_one_line_with_the_fix(
    tmp_path: Path, command: list[str]
) -> None:
    # The case, "SQLite in a read-only folder", printed 24 lines of "Event loop is closed"
    # before the message; here: a folder that cannot be created, and a database SQLite opens read-only.
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    readonly = tmp_path / "ro.sqlite3"
    sqlite3.connect(readonly).close()
    for url, words in (
        (f"sqlite+aiosqlite:///{blocker / 'fw.sqlite3'}", f"cannot create the folder {blocker}"),
        (f"sqlite+aiosqlite:///file:{readonly}?mode=ro&uri=true", "attempt to write a readonly database"),
    ):
        sources = '[[sources]]\nname = "Wire"\nurl = "https://wire.example/feed.xml"\n'
        env = dict(base_env(tmp_path, sources), FW_DATABASE_URL=url)
        code, out, err = await run_cli(*command, env=env)
        assert code == 2, (url, out, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), err
        assert words in lines[0] and "FW_DATABASE_URL chooses where it lives" in lines[0], lines[0]


def test_a_read_only_sqlite_folder_is_named_before_sqlite_opens_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The root user (CI's) can write anywhere, so the permission check is faked here.
    from bot.store import db

    real_access = os.access
    folder = tmp_path / "data"
    folder.mkdir()
    monkeypatch.setattr(db.os, "access", lambda p, mode: False if Path(p) == folder else real_access(p, mode))
    with pytest.raises(
        db.DatabaseLocationError, match=f"the folder {folder} of the SQLite database is read-only"
    ):
        db.create_engine(f"sqlite+aiosqlite:///{folder / 'fw.sqlite3'}")
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["stories", "--since", "99999999w"], "is too long; at most 10 years"),
        (["digest", "--preview", "--since", "99999999w"], "is too long; at most 10 years"),
        (["classify", "extra"], "Got unexpected extra argument (extra)"),
        (["no-such-command"], "No such command 'no-such-command'"),
        (["stories", "--topic"], "Option '--topic' requires an argument"),
        (
            ["search", "chips", "topic:chip"],
            "unknown topic 'chip': use one of distillation, ip, natsec, release",
        ),
        (["search", "since:yesterday", "chips"], "is not a date: use since:7d"),
        (["search"], "Missing argument 'QUERY...'"),
    ],
)
def test_a_wrong_argument_is_one_error_line_with_where_to_look(
    tmp_path: Path, args: list[str], words: str
) -> None:
    env = {"FW_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'x.sqlite3'}", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "bot", *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=120
    )
    assert done.returncode == 2 and done.stdout == "", done
    [line] = done.stderr.splitlines()
    assert line.startswith("error: ") and words in line and "--help`)" in line, line


def test_version_and_help_still_exit_0(tmp_path: Path) -> None:
    for args in (["--version"], ["--help"], ["stories", "--help"]):
        done = subprocess.run(
            [sys.executable, "-m", "bot", *args], capture_output=True, text=True, cwd=REPO, timeout=120
        )
        assert done.returncode == 0 and done.stdout and not done.stderr, (args, done)


async def test_a_missing_topics_file_is_one_line_for_every_command(tmp_path: Path) -> None:
    """The demo and run build the app without the CLI's own checks; a missing file is still one
    line naming the setting, never a traceback."""
    env = base_env(tmp_path)
    env["FW_TOPICS_FILE"] = str(tmp_path / "nowhere" / "topics.toml")
    for command in (["demo"], ["poll", "--once"]):
        code, out, err = await run_cli(*command, env=env)
        assert code == 2, (command, out, err)
        assert "Traceback" not in err and "file not found (set FW_TOPICS_FILE)" in err, (command, err)
