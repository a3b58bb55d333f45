"""`frontierwatch sources import|export` as a user runs them: a subprocess, settings from the
environment, real OPML exports (tests/data/opml/README.md). No DNS: `--no-dns`, or IP-address URLs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bot.domain import SourceSpec
from bot.sources.config import load_sources
from bot.sources.opml import CHANNEL_FOLDER, read_outlines
from bot.store.chat import ChannelKey, ChatStore
from tests.support.newsdb import open_store
from tests.test_cli import base_env, run_cli

DATA = Path(__file__).parent / "data" / "opml"
HAND_WRITTEN = """\
# Our sources — reviewed weekly.

[[sources]]
name = "Schneier on Security"   # the one we read first
url  = "HTTP://WWW.Schneier.com/blog/index.rdf?utm_source=rss"
weight = 2.0

[[sources]]
name = "DeepSeek on the Hub"
kind = "hf_models"
org  = "deepseek-ai"
"""


async def test_import_merges_a_real_feedly_export_and_a_second_import_adds_nothing(tmp_path: Path) -> None:
    env = base_env(tmp_path, HAND_WRITTEN)
    sources = Path(env["FW_SOURCES_FILE"])
    opml = str(DATA / "feedly-infosec.opml")

    code, out, err = await run_cli("sources", "import", opml, "--no-dns", "--dry-run", env=env)
    assert code == 0, err
    assert out.splitlines()[-1] == f"added 26, already present 1, refused 0 (dry run: {sources} not changed)"
    assert sources.read_text(encoding="utf-8") == HAND_WRITTEN

    code, out, err = await run_cli("sources", "import", opml, "--no-dns", env=env)
    assert code == 0, err
    # The export's http://www.schneier.com/blog/index.rdf is the hand-written feed, spelled otherwise.
    assert out.splitlines()[-1].startswith("added 26, already present 1, refused 0 (wrote ")
    merged = sources.read_bytes()
    assert merged.startswith(HAND_WRITTEN.encode())  # comments and layout kept, byte for byte
    assert len(load_sources(sources)) == 2 + 26

    code, out, _ = await run_cli("sources", "import", opml, "--no-dns", env=env)
    assert code == 0
    assert out.splitlines()[-1] == f"added 0, already present 27, refused 0 ({sources} not changed)"
    assert sources.read_bytes() == merged


async def test_import_reports_each_refused_outline_and_exits_1(tmp_path: Path) -> None:
    env = base_env(tmp_path, "")
    opml = tmp_path / "mixed.opml"
    # IP-address hosts: the SSRF check judges them without any DNS look-up.
    opml.write_text(
        '<?xml version="1.0" encoding="UTF-8"?><opml version="2.0"><head><title>t</title></head><body>'
        '<outline text="Home lab"><outline text="Router" type="rss" xmlUrl="http://192.168.1.1/rss"/>'
        '<outline text="Site only" htmlUrl="https://example.org/"/></outline>'
        '<outline text="Public" type="rss" xmlUrl="http://93.184.216.34/feed.xml"/>'
        "</body></opml>",
        encoding="utf-8",
    )
    code, out, err = await run_cli("sources", "import", str(opml), env=env)
    assert code == 1, err
    assert out.splitlines() == [
        "refused: Home lab / Router — http://192.168.1.1/rss: SSRF guard: private address 192.168.1.1",
        "refused: Home lab / Site only — (no xmlUrl): no feed URL: the outline has no xmlUrl attribute, "
        "only htmlUrl https://example.org/ (a web page, not a feed)",
        f"added 1, already present 0, refused 2 (wrote {env['FW_SOURCES_FILE']}; a running bot polls "
        "the new sources after its next start)",
    ]
    assert [(s.name, s.url) for s in load_sources(Path(env["FW_SOURCES_FILE"]))] == [
        ("Public", "http://93.184.216.34/feed.xml")
    ]


async def test_import_of_a_hostile_or_broken_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    env = base_env(tmp_path, HAND_WRITTEN)
    bomb = tmp_path / "bomb.opml"
    bomb.write_text(
        '<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY a "aaaaaaaaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
        '<opml version="2.0"><body><outline text="&b;" xmlUrl="http://93.184.216.34/"/></body></opml>'
    )
    code, out, err = await run_cli("sources", "import", str(bomb), env=env)
    assert (code, out) == (2, "")
    assert err.startswith(f"error: {bomb}: refused: the file declares a DTD") and err.count("\n") == 1
    assert Path(env["FW_SOURCES_FILE"]).read_text(encoding="utf-8") == HAND_WRITTEN


async def test_export_writes_the_file_and_channel_feeds_and_imports_back_the_same(tmp_path: Path) -> None:
    env = base_env(tmp_path, HAND_WRITTEN)
    code, _, err = await run_cli(
        "sources", "import", str(DATA / "inoreader-android.xml"), "--no-dns", env=env
    )
    assert code == 0, err
    store = await open_store(env["FW_DATABASE_URL"])
    try:
        chat = ChatStore(store.engine)
        key = ChannelKey("discord", "1", "2", "policy")
        for name, url in [
            ("Lawfare", "https://www.lawfaremedia.org/feeds/lawfare.xml"),
            ("Kotlin again", "https://blog.jetbrains.com/kotlin/feed/"),  # the file has it already
        ]:
            await chat.add_channel_source(
                key, SourceSpec(name=name, url=url), added_by="u", limit=10, now=datetime.now(UTC)
            )
    finally:
        await store.engine.dispose()

    exported = tmp_path / "exported.opml"
    code, out, err = await run_cli("sources", "export", "--output", str(exported), env=env)
    assert code == 0 and out == "", err
    assert err.strip() == (
        f"exported 115 feeds (114 from {env['FW_SOURCES_FILE']}, 1 added by channels); "
        f"left out 1 tracker(s) (hf_models/github_releases are not feeds); wrote {exported}"
    )
    title, outlines = read_outlines(exported.read_bytes())
    assert title == "Frontier Watch sources"
    assert [(o.title, o.folders) for o in outlines[-1:]] == [("Lawfare", (CHANNEL_FOLDER,))]

    code, stdout_document, _ = await run_cli("sources", "export", env=env)
    assert code == 0 and stdout_document.startswith(
        '<?xml version="1.0" encoding="UTF-8"?>\n<opml version="2.0">'
    )

    # Round trip: the export, imported into an empty sources file, gives the same feeds.
    (tmp_path / "again").mkdir()
    empty = base_env(tmp_path / "again", "")
    code, out, err = await run_cli("sources", "import", str(exported), "--no-dns", env=empty)
    assert code == 0, err
    before = [(s.name, s.url) for s in load_sources(Path(env["FW_SOURCES_FILE"])) if s.kind == "feed"]
    after = [(s.name, s.url) for s in load_sources(Path(empty["FW_SOURCES_FILE"]))]
    assert after == [*before, ("Lawfare", "https://www.lawfaremedia.org/feeds/lawfare.xml")]
