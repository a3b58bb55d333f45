"""sources.toml and webhooks.toml are validated by pydantic models: every mistake is one line that
names the file, the entry and the key, and says what would be accepted."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.platforms.webhooks import WebhooksConfigError, load_webhooks
from bot.sources.config import SourcesConfigError, load_sources
from tests.support.chat_env import TOPICS

FEED = '[[sources]]\nname = "A"\nurl = "https://a.example/feed"\n'
SLACK_URL = "https://hooks.slack.com/services/T0/B0/secret-part"
HOOK = f'[[webhooks]]\nname = "team"\nurl = "{SLACK_URL}"\n'


def sources_error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "sources.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SourcesConfigError) as info:
        load_sources(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: "), message
    return message.removeprefix(f"{path}: ")


def webhooks_error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "webhooks.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(WebhooksConfigError) as info:
        load_webhooks(path, TOPICS)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: "), message
    assert "secret-part" not in message  # webhook URLs are credentials
    return message.removeprefix(f"{path}: ")


# --------------------------------------------------------------------------------------- sources.toml

KNOWN = "['enabled', 'interval_minutes', 'kind', 'name', 'official', 'org', 'repo', 'url', 'weight']"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"title = 'mine'\n{FEED}", "unknown top-level key 'title'; the file holds [[sources]] tables"),
        (
            f"{FEED}intervall = 5\n",
            f"[[sources]] #1 ('A'): unknown key(s) ['intervall'] "
            f"(did you mean `interval_minutes` for 'intervall'?); known: {KNOWN}",
        ),
        (
            f"{FEED}interval_minutes = '30'\n",
            "[[sources]] #1 ('A'): `interval_minutes` must be a whole number from 1 to 10080 (got '30')",
        ),
        (f"{FEED}enabled = 1\n", "[[sources]] #1 ('A'): `enabled` must be true or false (got 1)"),
        (
            f"{FEED}weight = true\n",
            "[[sources]] #1 ('A'): `weight` must be a number above 0 and at most 10 (got true)",
        ),
        (
            f'{FEED}[[sources]]\nname = "B"\nurl = "https://a.example/feed"\n',
            "[[sources]] #2 ('B'): same source as #1",
        ),
        (
            f'{FEED}[[sources]]\nname = " a "\nurl = "https://a.example/other"\n',
            "[[sources]] #2 ('a'): the name is already used by #1",
        ),
        (
            f'{FEED}[[sources]]\nname = "B"\nurl = "HTTPS://A.example:443/feed"\n',
            "[[sources]] #2 ('B'): same source as #1",
        ),
        (
            '[[sources]]\nname = "Caf\u00e9"\nurl = "https://a.example/1"\n'
            '[[sources]]\nname = "CAFE\u0301"\nurl = "https://a.example/2"\n',
            "[[sources]] #2 ('CAFE\u0301'): the name is already used by #1",
        ),
        (
            '[[sources]]\nname = "A"\nurl = "https://"\n',
            "[[sources]] #1 ('A'): `url` must be an http:// or https:// URL (empty host)",
        ),
        (
            '[[sources]]\nname = "A"\nurl = "https://a.example:99999/feed"\n',
            "[[sources]] #1 ('A'): `url` must be an http:// or https:// URL (invalid port number)",
        ),
        (
            '[[sources]]\nname = "A"\n',
            "[[sources]] #1 ('A'): `url` is required for a feed: an http:// or https:// URL",
        ),
        (
            f"{FEED}interval_minutes = 10081\n",
            "[[sources]] #1 ('A'): `interval_minutes` must be a whole number from 1 to 10080 (got 10081)",
        ),
        (
            f"{FEED}weight = nan\n",
            "[[sources]] #1 ('A'): `weight` must be a number above 0 and at most 10 (got nan)",
        ),
        (
            f'[[sources]]\nname = "{"n" * 201}"\nurl = "https://a.example/feed"\n',
            "[[sources]] #1 ('" + "n" * 201 + "'): `name` is required "
            "(a non-empty string of at most 200 characters)",
        ),
        ("sources = [1]\n", "[[sources]] #1: must be a table"),
    ],
)
def test_sources_mistakes_are_one_line(tmp_path: Path, text: str, message: str) -> None:
    assert sources_error(tmp_path, text) == message


def test_the_first_mistake_in_file_order_is_reported(tmp_path: Path) -> None:
    text = f'{FEED}[[sources]]\nname = "B"\nurl = "https://b.example/"\nweight = 11\nkinds = "feed"\n'
    assert sources_error(tmp_path, text).startswith(
        "[[sources]] #2 ('B'): unknown key(s) ['kinds'] (did you mean `kind` for 'kinds'?)"
    )


def test_a_feed_url_is_kept_as_written_and_the_default_interval_applies(tmp_path: Path) -> None:
    # A feed's identity is "feed:<url>": a normalised URL would make every configured feed a new source.
    path = tmp_path / "sources.toml"
    path.write_text('[[sources]]\nname = "Upper"\nurl = "HTTPS://Example.com"\nweight = 2\n')
    [spec] = load_sources(path, default_interval=17)
    assert (spec.url, spec.interval_minutes, spec.weight) == ("HTTPS://Example.com", 17, 2.0)


def test_trackers_need_no_url(tmp_path: Path) -> None:
    path = tmp_path / "sources.toml"
    path.write_text(
        '[[sources]]\nname = "HF"\nkind = "hf_models"\norg = " deepseek-ai "\n'
        '[[sources]]\nname = "GH"\nkind = "github_releases"\nrepo = "deepseek-ai/DeepSeek-V3"\n'
    )
    hf, gh = load_sources(path)
    assert (hf.url, hf.org, gh.repo) == ("", "deepseek-ai", "deepseek-ai/DeepSeek-V3")


# -------------------------------------------------------------------------------------- webhooks.toml

ENTRY_KEYS = "digest_time, frequency, keywords, name, platform, timezone, topics, url, weekday"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            f"{HOOK}topics = ['ip']\n[[webhook]]\n",
            "unknown top-level key 'webhook'; expected only [[webhooks]] tables (did you mean [[webhooks]]?)",
        ),
        (
            f"{HOOK}topics = ['ip']\ndigest_tme = '09:00'\n",
            "webhook #1 (team): unknown key(s) digest_tme (did you mean 'digest_time' for 'digest_tme'?); "
            f"known keys: {ENTRY_KEYS}",
        ),
        (
            f"{HOOK}topics = [{{topic = 'ip', mood = 'alerts'}}]\n",
            "webhook #1 (team): each topic is a name or {topic, mode, min_score}; unknown key(s) mood",
        ),
        (
            f"{HOOK}topics = ['ip']\nkeywords = {{includes = ['chip']}}\n",
            "webhook #1 (team): 'keywords' must be a table with 'include' and/or 'exclude' lists; "
            "unknown key(s) includes (did you mean 'include' for 'includes'?)",
        ),
        (
            f"{HOOK}topics = ['ip']\ntimezone = 5\n",
            "webhook #1 (team): 'timezone' must be an IANA name like Europe/Berlin, got 5",
        ),
        (
            f"{HOOK}topics = ['ip']\nkeywords = {{include = [2025]}}\n",
            "webhook #1 (team): 'keywords.include' must be a list of strings, got 2025",
        ),
        (
            f"{HOOK}topics = ['ip']\nplatform = 'teams'\n",
            "webhook #1 (team): 'platform' must be \"discord\" or \"slack\", got 'teams'",
        ),
        (
            f"{HOOK}topics = ['ip', {{topic = 'ip', mode = 'alerts'}}]\n",
            "webhook #1 (team): topic 'ip' is listed twice in 'topics'",
        ),
        (
            f"{HOOK}topics = ['ip']\n{HOOK}topics = ['natsec']\n",
            "webhook #2 (team): webhook name 'team' is used twice (also webhook #1); "
            "each webhook needs its own name",
        ),
        (
            "[[webhooks]]\nname = 'team'\nurl = 'https://'\ntopics = ['ip']\n",
            "webhook #1 (team): 'url' must be an https:// webhook URL (empty host)",
        ),
        (
            f"[[webhooks]]\nname = 'team'\nurl = '{SLACK_URL} '\ntopics = ['ip']\n",
            "webhook #1 (team): 'url' contains white space; copy the webhook URL again",
        ),
        (
            f"{HOOK}topics = [{{topic = 'ip', min_score = 1.5}}]\n",
            "webhook #1 (team): min_score of 'ip' must be a number from 0 to 1",
        ),
        (
            f"{HOOK}topics = ['ip']\ndigest_time = '24:00'\n",
            "webhook #1 (team): 'digest_time' must be HH:MM (24-hour), got '24:00'",
        ),
        (
            f"[[webhooks]]\nname = '{SLACK_URL}'\nurl = '{SLACK_URL}'\ntopics = ['ip']\n",
            "webhook #1: 'name' must be 1-64 letters, digits, spaces, '.', '_' or '-', got a URL (not shown)",
        ),
    ],
)
def test_webhooks_mistakes_are_one_line(tmp_path: Path, text: str, message: str) -> None:
    assert webhooks_error(tmp_path, text) == message


def test_webhook_values_keep_their_forms(tmp_path: Path) -> None:
    path = tmp_path / "webhooks.toml"
    path.write_text(
        "[[webhooks]]\nname = 'team'\nurl = 'HTTPS://hooks.slack.com/services/T0/B0/x'\n"
        "topics = ['ip', {topic = 'natsec', min_score = 1}]\nfrequency = 'weekly'\nweekday = 'Friday'\n"
        "keywords = {include = ['chip', ' chip ', ''], exclude = ['whisky']}\n",
        encoding="utf-8",
    )
    [spec] = load_webhooks(path, TOPICS)
    assert spec.platform == "slack_webhook" and spec.url == "HTTPS://hooks.slack.com/services/T0/B0/x"
    assert [(t.topic, t.mode, t.min_score) for t in spec.topics] == [
        ("ip", "both", 0.0),
        ("natsec", "both", 1.0),
    ]
    assert (spec.digest_weekday, spec.include, spec.exclude) == ("fri", ("chip",), ("whisky",))
