"""Model-release trackers: request building, Hub JSON and GitHub Atom parsing, the shipped sources.toml,
and fetching through the real FeedFetcher from a local Hub/GitHub stand-in."""

from __future__ import annotations

import json
import pickle
import tomllib
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from bot.domain import Entry, FetchResult, ParsedFeed, SourceSpec
from bot.settings import Settings
from bot.sources.fetcher import FeedFetcher
from bot.sources.trackers import (
    HF_OUTLET,
    parse_for_kind,
    parse_github_releases,
    parse_hf_models,
    rate_limit_reset,
    release_tag,
    request_headers,
    request_url,
    validate_spec,
)
from tests.support.hubserver import PLACEHOLDER_CREATED_AT, HubServer, synthetic_model, synthetic_page

REPO = Path(__file__).resolve().parent.parent
SOURCES_TOML = REPO / "config" / "sources.toml"
REAL_FEEDS = Path("corpus") / "real-feeds"

HF = SourceSpec(name="DeepSeek on the Hub", url="", kind="hf_models", org="deepseek-ai")
GH = SourceSpec(name="DeepSeek-V3 releases", url="", kind="github_releases", repo="deepseek-ai/DeepSeek-V3")
FEED = SourceSpec(name="A feed", url="https://example.com/feed.xml")


@pytest.fixture(autouse=True)
def _no_ambient_token(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A token in the developer's environment (or config file) must not change what these tests see."""
    for name in ("HF_TOKEN", "FW_HF_TOKEN", "FW_HF_API_BASE", "FW_GITHUB_BASE"):
        monkeypatch.delenv(name, raising=False)
    empty = tmp_path / "frontierwatch.toml"
    empty.write_text("")
    monkeypatch.setenv("FW_CONFIG_FILE", str(empty))


def make_settings(**overrides: Any) -> Settings:
    # Through **kwargs: pydantic-settings fills the other fields, which mypy cannot see.
    return Settings(**overrides)


def extras(entry: Entry) -> dict[str, str]:
    return dict(entry.extra)


def hf_body(models: list[dict[str, Any]]) -> bytes:
    return json.dumps(models).encode()


# --- request_url / request_headers ----------------------------------------------------------------


def test_request_url_hf_models_asks_for_newest_first_with_metadata() -> None:
    url = request_url(HF, make_settings(hf_api_base="https://hub.example/"))
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://hub.example/api/models"
    query = parse_qs(parts.query)
    assert query["author"] == ["deepseek-ai"]
    assert query["sort"] == ["createdAt"]
    assert query["direction"] == ["-1"]
    assert query["limit"] == ["50"]
    expanded = set(query["expand[]"])
    assert {"pipeline_tag", "library_name", "tags", "createdAt", "safetensors"} <= expanded
    # The Hub refuses `expand` together with `full`/`config`.
    assert "full" not in query and "config" not in query


def test_request_url_github_and_feed() -> None:
    assert (
        request_url(GH, make_settings(github_base="http://gh.local:8080/"))
        == "http://gh.local:8080/deepseek-ai/DeepSeek-V3/releases.atom"
    )
    assert request_url(GH, make_settings()) == "https://github.com/deepseek-ai/DeepSeek-V3/releases.atom"
    assert request_url(FEED, make_settings()) == "https://example.com/feed.xml"


def test_request_url_refuses_an_invalid_spec() -> None:
    with pytest.raises(ValueError, match="org"):
        request_url(SourceSpec(name="x", url="", kind="hf_models"), make_settings())


def test_request_headers_without_token() -> None:
    headers = request_headers(HF, make_settings())
    assert headers == {"Accept": "application/json"}
    assert request_headers(FEED, make_settings()) == {}
    assert "atom" in request_headers(GH, make_settings())["Accept"]


def test_request_headers_with_token_never_show_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_supersecret123")
    settings = make_settings()
    headers = request_headers(HF, settings)
    assert headers["Authorization"] == "Bearer hf_supersecret123"
    assert "hf_supersecret123" not in repr(headers)
    assert "hf_supersecret123" not in str(headers)
    assert "hf_supersecret123" not in repr(settings)
    # The token belongs to the Hub only.
    assert "Authorization" not in request_headers(GH, settings)
    assert "Authorization" not in request_headers(FEED, settings)


def test_blank_token_sends_no_authorization(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "   ")
    assert "Authorization" not in request_headers(HF, make_settings())


# --- validate_spec --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        HF,
        GH,
        FEED,
        SourceSpec(name="Qwen", url="", kind="hf_models", org="Qwen"),
        SourceSpec(name="GLM", url="", kind="github_releases", repo="zai-org/GLM-4.5"),
    ],
)
def test_validate_spec_accepts(spec: SourceSpec) -> None:
    validate_spec(spec)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (SourceSpec(name="x", url="", kind="hf_models"), "needs `org`"),
        (SourceSpec(name="x", url="", kind="hf_models", org="a/b"), "needs `org`"),
        (SourceSpec(name="x", url="", kind="hf_models", org=" "), "needs `org`"),
        (SourceSpec(name="x", url="", kind="github_releases"), "owner/name"),
        (SourceSpec(name="x", url="", kind="github_releases", repo="just-a-name"), "owner/name"),
        (SourceSpec(name="x", url="", kind="github_releases", repo="a/b/c"), "owner/name"),
        (SourceSpec(name="x", url="", kind="github_releases", repo="owner/.."), "owner/name"),
        (SourceSpec(name="x", url=""), "http"),
        (SourceSpec(name="x", url="ftp://example.com/feed"), "http"),
        (SourceSpec(name="x", url="https://"), "http"),
        (SourceSpec(name="", url="https://example.com/"), "name"),
        (SourceSpec(name="x", url="https://example.com/", weight=0.0), "weight"),
        (SourceSpec(name="x", url="https://example.com/", interval_minutes=0), "interval"),
        (SourceSpec(name="x", url="https://example.com/", kind="podcast"), "kind"),  # type: ignore[arg-type]
    ],
)
def test_validate_spec_refuses_with_a_clear_message(spec: SourceSpec, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_spec(spec)


# --- parse_hf_models: real captured Hub answers ---------------------------------------------------


@pytest.mark.shared
def test_real_expand_capture(shared_dir: Path) -> None:
    body = (shared_dir / REAL_FEEDS / "hf_api_models_sort-trendingScore_expand.json").read_bytes()
    parsed = parse_hf_models(body, {}, "https://huggingface.co/api/models", org="deepseek-ai")
    assert parsed.error is None
    [entry] = parsed.entries  # the capture mixes authors; only deepseek-ai's own repository counts
    assert entry.guid == "deepseek-ai/DeepSeek-V4-Flash-0731"
    assert entry.url == "https://huggingface.co/deepseek-ai/DeepSeek-V4-Flash-0731"
    assert entry.title == "deepseek-ai releases new model DeepSeek-V4-Flash-0731 on Hugging Face"
    assert entry.published == datetime(2026, 7, 31, 7, 30, 24, tzinfo=UTC)
    assert entry.outlet == HF_OUTLET
    meta = extras(entry)
    assert meta["tracker"] == "hf_models"
    assert meta["org"] == "deepseek-ai"
    assert meta["model"] == "DeepSeek-V4-Flash-0731"
    assert meta["pipeline_tag"] == "text-generation"
    assert meta["library"] == "transformers"
    assert meta["license"] == "mit"
    assert "params" not in meta  # the capture did not expand safetensors
    assert "text-generation" in entry.summary and "licence mit" in entry.summary
    assert "region:us" not in entry.tags and "license:mit" not in entry.tags
    assert "fp8" in entry.tags


@pytest.mark.shared
def test_real_capture_every_item_parses_for_its_own_org(shared_dir: Path) -> None:
    for name in ("hf_api_models_sort-trendingScore_expand.json", "hf_api_models_default_fields.json"):
        body = (shared_dir / REAL_FEEDS / name).read_bytes()
        for item in json.loads(body):
            org = item["id"].split("/")[0]
            parsed = parse_hf_models(body, {}, "https://huggingface.co/api/models", org=org)
            assert parsed.error is None, (name, org, parsed.error)
            assert item["id"] in {e.guid for e in parsed.entries}
            for entry in parsed.entries:
                assert entry.published is not None and entry.published.tzinfo is UTC
                assert entry.title.startswith(f"{org} releases ")


@pytest.mark.shared
def test_real_capture_items_without_pipeline_or_library(shared_dir: Path) -> None:
    """The capture deliberately has models lacking pipeline_tag/library_name."""
    body = (shared_dir / REAL_FEEDS / "hf_api_models_sort-trendingScore_expand.json").read_bytes()
    [entry] = parse_hf_models(body, {}, "u", org="unsloth").entries
    meta = extras(entry)
    assert "pipeline_tag" not in meta and "library" not in meta
    assert meta["base_model"] == "deepseek-ai/DeepSeek-V4-Flash-0731"
    assert "quantized from deepseek-ai/DeepSeek-V4-Flash-0731" in entry.summary


@pytest.mark.shared
def test_real_default_fields_capture(shared_dir: Path) -> None:
    body = (shared_dir / REAL_FEEDS / "hf_api_models_default_fields.json").read_bytes()
    [entry] = parse_hf_models(body, {}, "u", org="qwen").entries  # org names match case-insensitively
    assert entry.guid == "Qwen/Qwen-Image-2.1"
    assert entry.title == "Qwen releases new model Qwen-Image-2.1 on Hugging Face"
    assert extras(entry)["pipeline_tag"] == "text-to-image"
    assert extras(entry)["library"] == "diffusers"
    assert extras(entry)["license"] == "other"


@pytest.mark.shared
def test_real_capture_for_an_absent_org_is_an_error_not_a_silent_empty_list(shared_dir: Path) -> None:
    body = (shared_dir / REAL_FEEDS / "hf_api_models_sort-trendingScore_expand.json").read_bytes()
    parsed = parse_hf_models(body, {}, "u", org="openai")
    assert parsed.entries == []
    assert parsed.error is not None and "not owned by openai" in parsed.error


# --- parse_hf_models: synthetic pages -------------------------------------------------------------


def test_full_metadata_from_a_synthetic_model() -> None:
    model = synthetic_model(
        "deepseek-ai",
        "DeepSeek-V3.2",
        "2026-09-29T10:12:00.000Z",
        params=671_026_419_200,
        tags=["deepseek_v32", "fp8", "conversational", "base_model:finetune:deepseek-ai/DeepSeek-V3.1"],
        gated="manual",
    )
    [entry] = parse_hf_models(hf_body([model]), {}, "u", org="deepseek-ai").entries
    assert entry.title == "deepseek-ai releases new model DeepSeek-V3.2 on Hugging Face"
    assert entry.published == datetime(2026, 9, 29, 10, 12, tzinfo=UTC)
    assert extras(entry) == {
        "tracker": "hf_models",
        "org": "deepseek-ai",
        "model": "DeepSeek-V3.2",
        "pipeline_tag": "text-generation",
        "library": "transformers",
        "license": "mit",
        "params": "671026419200",
        "base_model": "deepseek-ai/DeepSeek-V3.1",
        "gated": "manual",
    }
    assert "671B parameters" in entry.summary
    assert "fine-tuned from deepseek-ai/DeepSeek-V3.1" in entry.summary
    assert entry.tags[:2] == ("text-generation", "transformers")


@pytest.mark.parametrize(
    ("total", "shown"),
    [(7_615_616_512, "7.6B"), (494_032_768, "494M"), (1_000_000_000_000, "1T"), (125_000, "125K")],
)
def test_parameter_counts_read_well(total: int, shown: str) -> None:
    model = synthetic_model("o", "m", "2026-01-01T00:00:00.000Z", params=total)
    [entry] = parse_hf_models(hf_body([model]), {}, "u", org="o").entries
    assert f"{shown} parameters" in entry.summary


def test_minimal_item_only_id() -> None:
    [entry] = parse_hf_models(hf_body([{"id": "openai/gpt-oss-20b"}]), {}, "u", org="openai").entries
    assert entry.title == "openai releases new model gpt-oss-20b on Hugging Face"
    assert entry.published is None
    assert entry.tags == ()
    assert extras(entry) == {"tracker": "hf_models", "org": "openai", "model": "gpt-oss-20b"}
    assert entry.summary.startswith("New model repository openai/gpt-oss-20b")


def test_placeholder_created_at_means_unknown_date() -> None:
    old = synthetic_model("google", "bert-like", PLACEHOLDER_CREATED_AT)
    [entry] = parse_hf_models(hf_body([old]), {}, "u", org="google").entries
    assert entry.published is None


def test_odd_field_types_and_bad_items_are_skipped_not_fatal() -> None:
    items: list[Any] = [
        "not an object",
        {"id": 42},
        {"id": "gpt2"},  # legacy model without a namespace
        {"id": "has space/in name"},
        {"id": "org/good", "tags": "not-a-list", "pipeline_tag": 7, "createdAt": "yesterday", "gated": None},
        {"id": "org/good"},  # duplicate
        {"modelId": "org/from-modelId", "safetensors": {"parameters": {"BF16": 5, "F32": 7}}},
        {"id": "org/huge", "safetensors": {"total": float("inf")}, "tags": ["base_model:org/good"]},
    ]
    parsed = parse_hf_models(hf_body(items), {}, "u", org="org")
    assert parsed.error is None
    assert [e.guid for e in parsed.entries] == ["org/good", "org/from-modelId", "org/huge"]
    good, derived, huge = parsed.entries
    assert good.published is None and good.tags == ()
    assert extras(derived)["params"] == "12"
    assert "params" not in extras(huge)
    assert "derived from org/good" in huge.summary


def test_summary_is_cut_at_a_word_boundary() -> None:
    model = synthetic_model("o", "m", "2026-01-01T00:00:00.000Z", tags=[f"tag-{i}" for i in range(40)])
    [entry] = parse_hf_models(hf_body([model]), {}, "u", org="o", summary_chars=80).entries
    assert len(entry.summary) <= 80
    assert entry.summary.endswith("…")


def test_hub_base_controls_links() -> None:
    body = hf_body([synthetic_model("o", "m", "2026-01-01T00:00:00.000Z")])
    [entry] = parse_hf_models(body, {}, "u", org="o", hub_base="https://mirror.example/").entries
    assert entry.url == "https://mirror.example/o/m"


def test_pagination_next_url_from_link_header() -> None:
    body = hf_body(synthetic_page("o", 2, prefix="P"))
    url = "https://huggingface.co/api/models?author=o&limit=2"
    nxt = "https://huggingface.co/api/models?author=o&limit=2&cursor=eyJvIjoyfQ"
    parsed = parse_hf_models(body, {"link": f'<{nxt}>; rel="next"'}, url, org="o")
    assert parsed.next_url == nxt
    relative = parse_hf_models(body, {"Link": '</api/models?cursor=abc>; rel="next"'}, url, org="o")
    assert relative.next_url == "https://huggingface.co/api/models?cursor=abc"
    multi = parse_hf_models(
        body,
        {"link": '<https://huggingface.co/p1>; rel="prev", <https://huggingface.co/p3>; rel="next"'},
        url,
        org="o",
    )
    assert multi.next_url == "https://huggingface.co/p3"
    assert (
        parse_hf_models(body, {"link": '<https://huggingface.co/p1>; rel="prev"'}, url, org="o").next_url
        is None
    )
    # Another origin would receive the Hub token with the next request.
    elsewhere = parse_hf_models(body, {"link": '<https://evil.example/p2>; rel="next"'}, url, org="o")
    assert elsewhere.next_url is None
    assert parse_hf_models(body, {}, url, org="o").next_url is None


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'[{"id": "o/m", "tags": [', "not valid JSON"),
        (b"<html><body>Bad gateway</body></html>", "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
        (b"", "not valid JSON"),
        (b'{"models": []}', "expected a list"),
        (b'"just a string"', "expected a list"),
        (b'{"error": "Invalid sort parameter"}', "Invalid sort parameter"),
    ],
)
def test_unusable_bodies_give_an_error_and_never_raise(body: bytes, reason: str) -> None:
    parsed = parse_hf_models(body, {}, "u", org="o")
    assert parsed.entries == []
    assert parsed.error is not None and reason in parsed.error


def test_empty_list_is_a_quiet_org_not_an_error() -> None:
    parsed = parse_hf_models(b"[]", {}, "u", org="o")
    assert parsed.entries == [] and parsed.error is None


def test_rate_limit_reset_header() -> None:
    assert rate_limit_reset({"ratelimit": '"api";r=0;t=87'}) == 87.0
    assert rate_limit_reset({"RateLimit": '"api";r=12;t=3.5'}) == 3.5
    assert rate_limit_reset({"ratelimit": "garbage"}) is None
    assert rate_limit_reset({}) is None


@pytest.mark.shared
def test_hub_entries_are_labelled_release_by_the_shipped_classifier(shared_dir: Path) -> None:
    from bot.classify.rules import RuleClassifier
    from bot.classify.taxonomy import load_taxonomy

    classifier = RuleClassifier(load_taxonomy(REPO / "config" / "topics.toml"))
    entries: list[Entry] = []
    for name in ("hf_api_models_sort-trendingScore_expand.json", "hf_api_models_default_fields.json"):
        body = (shared_dir / REAL_FEEDS / name).read_bytes()
        for item in json.loads(body):
            entries += parse_hf_models(body, {}, "u", org=item["id"].split("/")[0]).entries
    entries += parse_hf_models(hf_body([{"id": "moonshotai/Kimi-K3"}]), {}, "u", org="moonshotai").entries
    for entry in entries:
        assert "release" in classifier.classify(entry.title, entry.summary).topics, entry.title


# --- parse_github_releases ------------------------------------------------------------------------


@pytest.mark.shared
def test_real_github_releases_feed(shared_dir: Path) -> None:
    body = (shared_dir / REAL_FEEDS / "github_releases_astral-sh_ty.atom").read_bytes()
    url = "https://github.com/astral-sh/ty/releases.atom"
    parsed = parse_github_releases(body, {"content-type": "application/atom+xml"}, url, repo="astral-sh/ty")
    assert parsed.error is None
    assert len(parsed.entries) == 10
    tags = [extras(e)["tag"] for e in parsed.entries]
    assert tags == [f"0.0.1-alpha.{n}" for n in range(34, 24, -1)]
    first = parsed.entries[0]
    # The release title equals its tag there, so it is not repeated.
    assert first.title == "astral-sh/ty release 0.0.1-alpha.34"
    assert first.url == "https://github.com/astral-sh/ty/releases/tag/0.0.1-alpha.34"
    assert first.outlet == "GitHub"
    assert extras(first)["tracker"] == "github_releases"
    assert extras(first)["repo"] == "astral-sh/ty"
    assert first.published == datetime(2025, 12, 12, 18, 30, 16, tzinfo=UTC)
    assert "Bug fixes" in first.summary and "<" not in first.summary
    assert all(len(e.summary) <= 400 for e in parsed.entries)
    assert len({e.guid for e in parsed.entries}) == 10


ATOM = b"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:media="http://search.yahoo.com/mrss/" xml:lang="en-US">
  <id>tag:github.com,2008:https://github.com/openai/gpt-oss/releases</id>
  <link type="text/html" rel="alternate" href="https://github.com/openai/gpt-oss/releases"/>
  <title>Release notes from gpt-oss</title>
  <updated>2026-09-08T12:00:00Z</updated>
  <entry>
    <id>tag:github.com,2008:Repository/1000/v0.1.0</id>
    <updated>2026-09-08T12:00:00Z</updated>
    <link rel="alternate" type="text/html" href="https://github.com/openai/gpt-oss/releases/tag/v0.1.0"/>
    <title>gpt-oss 120b update</title>
    <content type="html">&lt;p&gt;New &lt;b&gt;weights&lt;/b&gt; and tokenizer fixes.&lt;/p&gt;</content>
    <author><name>openai</name></author>
  </entry>
  <entry>
    <id>tag:github.com,2008:Repository/1000/pkg@1.2</id>
    <updated>2026-09-01T12:00:00Z</updated>
    <link rel="alternate" type="text/html" href="https://github.com/openai/gpt-oss/releases/tag/pkg%401.2"/>
    <title>Release pkg@1.2</title>
    <content type="html"></content>
  </entry>
  <entry>
    <id>tag:github.com,2008:Repository/1000/v0.0.9</id>
    <updated>2026-08-01T12:00:00Z</updated>
    <title>v0.0.9</title>
  </entry>
</feed>
"""


def test_synthetic_releases_titles_and_tags() -> None:
    url = "https://github.com/openai/gpt-oss/releases.atom"
    parsed = parse_github_releases(ATOM, {}, url, repo="openai/gpt-oss")
    assert parsed.error is None
    titles = [e.title for e in parsed.entries]
    tags = [extras(e).get("tag") for e in parsed.entries]
    assert tags == ["v0.1.0", "pkg@1.2", "v0.0.9"]  # the last one only from its Atom id
    assert titles[0] == "openai/gpt-oss release v0.1.0: gpt-oss 120b update"
    assert titles[1] == "openai/gpt-oss release pkg@1.2"
    assert titles[2] == "openai/gpt-oss release v0.0.9"
    assert parsed.entries[0].summary == "New weights and tokenizer fixes."
    assert all(e.outlet == "GitHub" for e in parsed.entries)


@pytest.mark.parametrize(
    ("url", "guid", "tag"),
    [
        ("https://github.com/o/r/releases/tag/v1.2.3", "", "v1.2.3"),
        ("https://github.com/o/r/releases/tag/release%2F2026-01", "", "release/2026-01"),
        ("", "tag:github.com,2008:Repository/976731654/0.0.1-alpha.34", "0.0.1-alpha.34"),
        ("https://github.com/o/r/commits", "urn:uuid:1", None),
    ],
)
def test_release_tag(url: str, guid: str, tag: str | None) -> None:
    assert release_tag(url, guid) == tag


def test_broken_releases_feed_gives_an_error() -> None:
    parsed = parse_github_releases(b"<html><body>rate limited</body></html>", {}, "u", repo="o/r")
    assert parsed.entries == [] and parsed.error is not None


# --- dispatcher and picklability ------------------------------------------------------------------


def test_parse_for_kind_dispatches() -> None:
    body = hf_body([synthetic_model("o", "m", "2026-01-01T00:00:00.000Z")])
    assert parse_for_kind("hf_models", body, {}, "u", org="o").entries[0].guid == "o/m"
    assert parse_for_kind("hf_models", body, {}, "u").error == "hf_models source without `org`"
    assert parse_for_kind("github_releases", ATOM, {}, "u").error == "github_releases source without `repo`"
    released = parse_for_kind("github_releases", ATOM, {}, "u", repo="openai/gpt-oss")
    assert released.entries[0].title.startswith("openai/gpt-oss release v0.1.0")
    assert parse_for_kind("feed", ATOM, {}, "u").entries[0].title == "gpt-oss 120b update"
    assert "unknown source kind" in (parse_for_kind("podcast", body, {}, "u").error or "")


def test_parse_functions_and_results_pickle() -> None:
    for fn in (parse_for_kind, parse_hf_models, parse_github_releases):
        assert pickle.loads(pickle.dumps(fn)) is fn
    parsed = parse_hf_models(hf_body(synthetic_page("o", 3)), {}, "u", org="o")
    assert pickle.loads(pickle.dumps(parsed)) == parsed


def test_parse_for_kind_runs_in_a_process_pool() -> None:
    body = hf_body(synthetic_page("o", 3))
    with ProcessPoolExecutor(max_workers=1) as pool:
        hub = pool.submit(parse_for_kind, "hf_models", body, {}, "u", org="o").result(timeout=60)
        gh = pool.submit(parse_for_kind, "github_releases", ATOM, {}, "u", repo="openai/gpt-oss").result(
            timeout=60
        )
    assert isinstance(hub, ParsedFeed) and len(hub.entries) == 3
    assert len(gh.entries) == 3


# --- through the real fetcher, against the local stand-in -----------------------------------------


@pytest.fixture
async def hub() -> AsyncIterator[HubServer]:
    async with HubServer() as server:
        yield server


def body_of(result: FetchResult) -> bytes:
    assert result.body is not None, result.error
    return result.body


def stand_in_settings(server: HubServer) -> Settings:
    return make_settings(allow_private_sources=True, hf_api_base=server.base, github_base=server.base)


async def fetch_spec(
    fetcher: FeedFetcher,
    spec: SourceSpec,
    settings: Settings,
    url: str | None = None,
    etag: str | None = None,
) -> FetchResult:
    return await fetcher.fetch(
        url or request_url(spec, settings), etag=etag, extra_headers=request_headers(spec, settings)
    )


async def test_fetch_hub_models_200_then_304(hub: HubServer) -> None:
    hub.add_models(synthetic_page("deepseek-ai", 5, prefix="DeepSeek"))
    hub.add_models(synthetic_page("someone-else", 5))
    settings = stand_in_settings(hub)
    async with FeedFetcher(settings) as fetcher:
        first = await fetch_spec(fetcher, HF, settings)
        assert first.ok, first.error
        assert first.etag
        parsed = parse_for_kind(
            "hf_models", body_of(first), first.headers, first.final_url, org="deepseek-ai"
        )
        assert parsed.error is None
        assert [e.guid for e in parsed.entries] == [f"deepseek-ai/DeepSeek-{i}" for i in range(5)]
        assert parsed.entries[0].url == "https://huggingface.co/deepseek-ai/DeepSeek-0"
        assert extras(parsed.entries[0])["params"] == "1000000000"  # expand[]=safetensors was honoured
        assert parsed.next_url is None

        again = await fetch_spec(fetcher, HF, settings, etag=first.etag)
        assert again.not_modified and again.error is None and again.body is None

    seen = hub.requests[0]
    assert seen.query["author"] == "deepseek-ai"
    assert seen.headers["Accept"] == "application/json"
    assert not seen.authorized
    assert hub.requests[1].headers["If-None-Match"] == first.etag


async def test_fetch_hub_sends_the_token_when_set(hub: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_tok")
    hub.add_models(synthetic_page("deepseek-ai", 1))
    settings = stand_in_settings(hub)
    async with FeedFetcher(settings) as fetcher:
        result = await fetch_spec(fetcher, HF, settings)
    assert result.ok
    assert hub.requests[0].headers["Authorization"] == "Bearer hf_tok"


async def test_fetch_hub_pagination_follows_link_header(hub: HubServer) -> None:
    hub.add_models(synthetic_page("deepseek-ai", 120))
    settings = stand_in_settings(hub)
    guids: list[str] = []
    url: str | None = request_url(HF, settings)
    pages = 0
    async with FeedFetcher(settings) as fetcher:
        while url is not None:
            result = await fetch_spec(fetcher, HF, settings, url=url)
            assert result.ok, result.error
            parsed = parse_hf_models(body_of(result), result.headers, result.final_url, org="deepseek-ai")
            guids += [e.guid for e in parsed.entries]
            url = parsed.next_url
            pages += 1
    assert pages == 3  # 50 + 50 + 20
    assert guids == [f"deepseek-ai/Model-{i}" for i in range(120)]


async def test_fetch_hub_rate_limited(hub: HubServer) -> None:
    hub.mode = "rate_limited"
    settings = stand_in_settings(hub)
    async with FeedFetcher(settings) as fetcher:
        result = await fetch_spec(fetcher, HF, settings)
        assert not result.ok
        assert result.status == 429
        assert result.error is not None and "429" in result.error
        assert result.retry_after == 30
        assert rate_limit_reset(result.headers) == 120

        # The Hub documents only the RateLimit header; without Retry-After the reset time still shows.
        hub.retry_after = None
        bare = await fetch_spec(fetcher, HF, settings)
        assert bare.status == 429 and bare.retry_after is None
        assert rate_limit_reset(bare.headers) == 120


async def test_fetch_hub_quota_runs_out(hub: HubServer) -> None:
    hub.quota = 2
    hub.add_models(synthetic_page("deepseek-ai", 1))
    settings = stand_in_settings(hub)
    async with FeedFetcher(settings) as fetcher:
        statuses = [(await fetch_spec(fetcher, HF, settings)).status for _ in range(3)]
    assert statuses == [200, 200, 429]


@pytest.mark.parametrize(("mode", "reason"), [("malformed", "not valid JSON"), ("object", "expected a list")])
async def test_fetch_hub_bad_json(hub: HubServer, mode: Any, reason: str) -> None:
    hub.mode = mode
    hub.add_models(synthetic_page("deepseek-ai", 3))
    settings = stand_in_settings(hub)
    async with FeedFetcher(settings) as fetcher:
        result = await fetch_spec(fetcher, HF, settings)
    assert result.ok  # the transport was fine; the body is what is broken
    parsed = parse_for_kind("hf_models", body_of(result), result.headers, result.final_url, org="deepseek-ai")
    assert parsed.entries == [] and parsed.error is not None and reason in parsed.error


async def test_fetch_hub_server_error(hub: HubServer) -> None:
    hub.mode = "server_error"
    settings = stand_in_settings(hub)
    async with FeedFetcher(settings) as fetcher:
        result = await fetch_spec(fetcher, HF, settings)
    assert result.status == 500 and result.error is not None


@pytest.mark.shared
async def test_fetch_real_shapes_from_the_stand_in(hub: HubServer, shared_dir: Path) -> None:
    hub.add_models(HubServer.load_models(shared_dir / REAL_FEEDS / "hf_api_models_default_fields.json"))
    hub.add_models(
        HubServer.load_models(shared_dir / REAL_FEEDS / "hf_api_models_sort-trendingScore_expand.json")
    )
    settings = stand_in_settings(hub)
    async with FeedFetcher(settings) as fetcher:
        result = await fetch_spec(fetcher, HF, settings)
    parsed = parse_hf_models(body_of(result), result.headers, result.final_url, org="deepseek-ai")
    # Newest first, as sort=createdAt&direction=-1 asks.
    assert [e.guid for e in parsed.entries] == [
        "deepseek-ai/DeepSeek-V4.1-Flash",
        "deepseek-ai/DeepSeek-V4-Flash-0731",
    ]


async def test_stand_in_refuses_snake_case_sort(hub: HubServer) -> None:
    settings = stand_in_settings(hub)
    async with FeedFetcher(settings) as fetcher:
        result = await fetcher.fetch(f"{hub.base}/api/models?sort=trending_score")
    assert result.status == 400


async def test_fetch_github_releases_200_304_404(hub: HubServer) -> None:
    hub.add_release_feed("openai/gpt-oss", ATOM)
    spec = SourceSpec(name="gpt-oss", url="", kind="github_releases", repo="openai/gpt-oss")
    settings = stand_in_settings(hub)
    async with FeedFetcher(settings) as fetcher:
        first = await fetch_spec(fetcher, spec, settings)
        assert first.ok, first.error
        parsed = parse_for_kind(
            "github_releases", body_of(first), first.headers, first.final_url, repo=spec.repo
        )
        assert [extras(e)["tag"] for e in parsed.entries] == ["v0.1.0", "pkg@1.2", "v0.0.9"]
        again = await fetch_spec(fetcher, spec, settings, etag=first.etag)
        assert again.not_modified
        missing = SourceSpec(name="nope", url="", kind="github_releases", repo="openai/nope")
        gone = await fetch_spec(fetcher, missing, settings)
        assert gone.status == 404 and gone.error is not None
    assert "Authorization" not in hub.requests[0].headers


# --- the shipped config/sources.toml --------------------------------------------------------------

REQUIRED_HF_ORGS = {
    "deepseek-ai",  # DeepSeek
    "Qwen",  # Qwen / Alibaba
    "moonshotai",  # Moonshot (Kimi)
    "zai-org",  # Zhipu / Z.ai
    "MiniMaxAI",  # MiniMax
    "meta-llama",  # Meta Llama
    "mistralai",  # Mistral
    "google",  # Gemma
    "openai",  # gpt-oss
    "microsoft",  # Phi
    "nvidia",  # NVIDIA
}
REQUIRED_GITHUB_OWNERS = {
    "deepseek-ai",
    "QwenLM",
    "MoonshotAI",
    "zai-org",
    "MiniMax-AI",
    "meta-llama",
    "mistralai",
    "google-deepmind",
    "openai",
    "microsoft",
    "NVIDIA",
}


@pytest.fixture(scope="module")
def shipped() -> Iterator[list[dict[str, Any]]]:
    data = tomllib.loads(SOURCES_TOML.read_text(encoding="utf-8"))
    assert isinstance(data.get("sources"), list)
    yield data["sources"]


def spec_from(table: dict[str, Any]) -> SourceSpec:
    return SourceSpec(
        name=table["name"],
        url=table.get("url", ""),
        kind=table.get("kind", "feed"),
        interval_minutes=table.get("interval_minutes", 30),
        weight=float(table.get("weight", 1.0)),
        enabled=table.get("enabled", True),
        org=table.get("org"),
        repo=table.get("repo"),
    )


def test_sources_toml_has_enough_real_feeds(shipped: list[dict[str, Any]]) -> None:
    feeds = [s for s in shipped if s.get("kind", "feed") == "feed"]
    assert len(feeds) >= 25
    for table in feeds:
        assert isinstance(table.get("name"), str) and table["name"].strip()
        assert table["url"].startswith(("https://", "http://")), table
    names = [s["name"] for s in shipped]
    assert len(names) == len(set(names)), "source names must be unique"
    urls = [s["url"] for s in feeds]
    assert len(urls) == len(set(urls)), "feed URLs must be unique"
    # The mission's groups are all represented.
    joined = " ".join(urls)
    for needle in (
        "news.google.com/rss/search",
        "federalregister.gov",
        "house.gov",
        "rss.arxiv.org",
        "openai.com",
    ):
        assert needle in joined


def test_sources_toml_has_every_required_tracker(shipped: list[dict[str, Any]]) -> None:
    orgs = {s["org"] for s in shipped if s.get("kind") == "hf_models"}
    assert orgs >= REQUIRED_HF_ORGS
    owners = {s["repo"].split("/")[0] for s in shipped if s.get("kind") == "github_releases"}
    assert owners >= REQUIRED_GITHUB_OWNERS
    for table in shipped:
        if table.get("kind") in {"hf_models", "github_releases"}:
            assert "url" not in table, f"{table['name']}: trackers build their URL from settings"


def test_every_shipped_source_passes_validate_spec(shipped: list[dict[str, Any]]) -> None:
    settings = make_settings()
    for table in shipped:
        spec = spec_from(table)
        validate_spec(spec)
        assert request_url(spec, settings).startswith("https://")


def test_shipped_file_loads_through_the_config_loader() -> None:
    from bot.sources.config import load_sources

    specs = load_sources(SOURCES_TOML)
    assert sum(1 for s in specs if s.kind == "feed") >= 25
    for spec in specs:
        validate_spec(spec)


def test_minimal_form_stays_valid(tmp_path: Path) -> None:
    from bot.sources.config import load_sources

    path = tmp_path / "sources.toml"
    path.write_text('[[sources]]\nname = "Example"\nurl = "https://example.com/feed.xml"\n', encoding="utf-8")
    [spec] = load_sources(path)
    assert spec.kind == "feed" and spec.weight == 1.0
    validate_spec(spec)
    assert request_url(spec, make_settings()) == "https://example.com/feed.xml"
