"""Settings: environment over TOML over defaults, one clear line per bad setting, no secrets shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import DEFAULT_DATABASE_URL, SettingsError, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith(("FW_", "DISCORD_", "SLACK_", "HF_")) or key == "PORT":
            monkeypatch.delenv(key)
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    monkeypatch.setenv("FW_CONFIG_FILE", str(empty))


def test_defaults() -> None:
    settings = load_settings()
    assert settings.database_url == DEFAULT_DATABASE_URL and settings.is_sqlite
    assert settings.sources_file == Path("config/sources.toml")
    assert settings.topics_file == Path("config/topics.toml")
    assert settings.allow_private_sources is False


def test_environment_beats_toml_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "frontierwatch.toml"
    config.write_text('fetch_concurrency = 7\nuser_agent = "from-toml"\n')
    monkeypatch.setenv("FW_CONFIG_FILE", str(config))
    monkeypatch.setenv("FW_FETCH_CONCURRENCY", "9")
    settings = load_settings()
    assert settings.fetch_concurrency == 9 and settings.user_agent == "from-toml"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        (
            "FW_FETCH_CONCURRENCY",
            "lots",
            "invalid setting FW_FETCH_CONCURRENCY: Input should be a valid integer",
        ),
        (
            "FW_DATABASE_URL",
            "mysql://x",
            "invalid setting FW_DATABASE_URL: Value error, must start with sqlite+aiosqlite://",
        ),
        ("FW_ALLOW_PRIVATE_SOURCES", "perhaps", "invalid setting FW_ALLOW_PRIVATE_SOURCES"),
        ("FW_LOG_LEVEL", "LOUD", "invalid setting FW_LOG_LEVEL"),
        ("FW_HF_API_BASE", "ftp://mirror", "invalid setting FW_HF_API_BASE"),
        ("FW_MAX_REDIRECTS", "9", "invalid setting FW_MAX_REDIRECTS"),
    ],
)
def test_bad_setting_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert str(info.value).startswith(expected) and "\n" not in str(info.value)


def test_unknown_key_in_toml_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "frontierwatch.toml"
    config.write_text("fetch_concurency = 7\n")
    monkeypatch.setenv("FW_CONFIG_FILE", str(config))
    with pytest.raises(SettingsError, match="unknown setting FW_FETCH_CONCURENCY"):
        load_settings()


def test_password_in_a_bad_database_url_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FW_DATABASE_URL", "postgres://bot:hunter2@db.example/fw")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "hunter2" not in str(info.value) and "bot:***@db.example" in str(info.value)


def test_hide_password_covers_slashes_and_query_items() -> None:
    from bot.settings import hide_password

    assert (
        hide_password("postgresql+asyncpg://bob:s3cr/et@db.example/fw")
        == "postgresql+asyncpg://bob:***@db.example/fw"
    )
    assert hide_password("postgresql://db.example/fw?user=bob&password=s3cret&ssl=1") == (
        "postgresql://db.example/fw?user=bob&password=***&ssl=1"
    )


def test_secrets_are_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_supersecretvalue")
    monkeypatch.setenv("DISCORD_TOKEN", "discord-secret-token")
    settings = load_settings()
    shown = repr(settings) + str(settings) + settings.model_dump_json()
    assert "supersecretvalue" not in shown and "discord-secret-token" not in shown
    assert settings.hf_token is not None and settings.hf_token.get_secret_value() == "hf_supersecretvalue"


def test_config_file_problems_are_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FW_CONFIG_FILE", str(tmp_path / "absent.toml"))
    with pytest.raises(SettingsError, match=r"absent.toml: no such file"):
        load_settings()
    broken = tmp_path / "broken.toml"
    broken.write_text("fetch_concurrency = [\n")
    monkeypatch.setenv("FW_CONFIG_FILE", str(broken))
    with pytest.raises(SettingsError, match=r"broken.toml: "):
        load_settings()
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00junk")
    monkeypatch.setenv("FW_CONFIG_FILE", str(binary))
    with pytest.raises(SettingsError, match=r"binary.toml: "):
        load_settings()


def test_a_misspelled_setting_is_named_with_the_closest_real_one() -> None:
    from bot.settings import misspelled_settings

    warnings = misspelled_settings({"FW_FECH_CONCURRENCY": "3", "FW_DATABASE_URL": "x", "FW_HF_TOKEN": "t"})
    assert warnings == [
        "FW_FECH_CONCURRENCY is not a Frontier Watch setting and is ignored; did you mean FW_FETCH_CONCURRENCY?"
    ]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SLACK_CLIENT_ID": "1"}, "SLACK_CLIENT_SECRET is not set"),
        ({"SLACK_CLIENT_SECRET": "s"}, "SLACK_CLIENT_ID is not set"),
        ({"SLACK_APP_TOKEN": "xapp-1"}, "also needs SLACK_BOT_TOKEN"),
    ],
)
def test_half_a_slack_configuration_is_refused_in_one_line(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError, match=message) as caught:
        load_settings()
    assert "\n" not in str(caught.value)


def test_a_bot_token_without_signing_secret_is_a_send_only_slack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-send-only")
    assert load_settings().slack_bot_token is not None


def test_example_env_lists_every_setting() -> None:
    from pydantic import AliasChoices

    from bot.settings import ENV_PREFIX, Settings

    text = (Path(__file__).resolve().parent.parent / "config" / "example.env").read_text()
    for name, info in Settings.model_fields.items():
        alias = info.validation_alias
        names = (
            [str(c) for c in alias.choices]
            if isinstance(alias, AliasChoices)
            else [ENV_PREFIX + name.upper()]
        )
        assert any(f"{n}=" in text for n in names), f"config/example.env does not mention {names[0]}"


def test_secrets_are_refused_in_the_config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "frontierwatch.toml"
    config.write_text('discord_token = "MTIz.secret-in-a-file"\n')
    monkeypatch.setenv("FW_CONFIG_FILE", str(config))
    with pytest.raises(SettingsError, match="discord_token is a secret") as caught:
        load_settings()
    assert "secret-in-a-file" not in str(caught.value) and "DISCORD_TOKEN" in str(caught.value)


def test_a_bad_value_names_the_variable_that_was_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "99999")
    with pytest.raises(SettingsError, match=r"^invalid setting PORT: "):
        load_settings()
