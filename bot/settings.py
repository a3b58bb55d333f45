"""Settings from the environment (prefix ``FW_``) and an optional TOML file.

Priority: environment > ``FW_CONFIG_FILE`` (default ``config/frontierwatch.toml``, optional) > defaults.
Chat tokens use the platforms' conventional names (``DISCORD_TOKEN``, ``SLACK_BOT_TOKEN``...) and are
never printed: they are ``SecretStr``.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./data/frontierwatch.sqlite3"
ENV_PREFIX = "FW_"


# Tokens and passwords: only ever from the environment, never from the config file.
SECRET_FIELDS = frozenset(
    {"discord_token", "slack_bot_token", "slack_app_token", "slack_signing_secret", "slack_client_id",
     "slack_client_secret", "hf_token", "web_password", "web_password_hash", "web_secret"}
)  # fmt: skip


MIN_RETENTION_DAYS = 8


class SettingsError(Exception):
    """A setting is invalid. The message is one line that names the setting."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        validate_default=True,
    )

    # --- storage
    database_url: str = Field(DEFAULT_DATABASE_URL, description="SQLAlchemy async URL")
    # --- configuration files
    sources_file: Path = Path("config/sources.toml")
    topics_file: Path = Path("config/topics.toml")
    topic_model: str = Field(
        "", description='learned topic model: "" = the packaged one, "off" = rules only, or a model file'
    )
    # --- fetching
    allow_private_sources: bool = False
    user_agent: str = "FrontierWatch/0.1 (+https://github.com/frontierwatch/frontierwatch; feed monitor)"
    fetch_concurrency: int = Field(128, ge=1, le=2048)
    fetch_per_host: int = Field(4, ge=1, le=256)
    connect_timeout: float = Field(10.0, gt=0)
    read_timeout: float = Field(30.0, gt=0)
    total_timeout: float = Field(60.0, gt=0)
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    max_redirects: int = Field(5, ge=0, le=5)
    default_interval_minutes: int = Field(30, ge=1, le=24 * 60)
    interval_jitter: float = Field(0.1, ge=0, le=0.5, description="share of the interval added at random")
    max_backoff_minutes: int = Field(24 * 60, ge=1)
    disable_after_failures: int = Field(0, ge=0, description="0 = never disable a failing source")
    summary_chars: int = Field(400, ge=40, le=4000)
    # --- processing
    parse_workers: int = Field(
        0, ge=-1, le=64, description="0 = one per CPU core, -1 = parse inline (no processes)"
    )
    parse_timeout: float = Field(
        60.0, gt=0, le=3600, description="seconds one feed may take to parse before its worker is killed"
    )
    parse_memory_mb: int = Field(
        1024, ge=0, description="address-space cap of each parser process in MB (0 = no cap)"
    )
    max_items_per_feed: int = Field(
        1000, ge=1, le=100_000, description="items read from one document; the rest are ignored"
    )
    cluster_window_hours: int = Field(72, ge=1, le=24 * 14)
    cluster_index_max_stories: int = Field(
        20_000, ge=0, description="stories the in-memory cluster index holds at most (0 = no cap)"
    )
    cluster_similarity: float | None = Field(
        None,
        gt=0,
        le=1,
        description="how sure the matcher must be that a story reports a cluster's event to join it "
        "(unset: the threshold fitted with the matcher, chosen for precision)",
    )
    cluster_linkage: float | None = Field(
        None,
        ge=0,
        le=1,
        description="how close a story must be to a cluster's latest stories on average to join it "
        "(0 = no floor; unset: the floor fitted with the matcher, which keeps a saga's developments apart)",
    )
    retention_days: int = Field(
        400, ge=0, description="stories and deliveries older than this are deleted (0 = keep everything)"
    )
    # --- scheduling
    poll_tick_seconds: float = Field(30.0, gt=0)
    poll_lease_seconds: float = Field(
        45.0, ge=5, le=3600, description="a claimed source's lease; renewed while it is worked on"
    )
    # --- trackers
    hf_api_base: str = "https://huggingface.co"
    github_base: str = "https://github.com"
    hf_token: SecretStr | None = Field(None, validation_alias=AliasChoices("HF_TOKEN", "FW_HF_TOKEN"))
    # --- chat platforms (issue 4 wires these)
    discord_api_base: str = "https://discord.com/api/v10"
    slack_api_base: str = "https://slack.com/api/"
    # Tokens are read by both the command side (issue 4) and the delivery side (issue 5).
    discord_token: SecretStr | None = Field(
        None, validation_alias=AliasChoices("DISCORD_TOKEN", "FW_DISCORD_TOKEN")
    )
    discord_gateway: bool = Field(
        True, description="hold Discord's gateway for /watch commands (false: send-only over REST)"
    )
    discord_guild_id: int | None = Field(
        None, description="sync slash commands to this guild only (instant; for development)"
    )
    discord_hide_from_members: bool = Field(
        False,
        description="set Manage Channels as /watch's default member permissions (hides reading commands too)",
    )
    slack_bot_token: SecretStr | None = Field(
        None, validation_alias=AliasChoices("SLACK_BOT_TOKEN", "FW_SLACK_BOT_TOKEN")
    )
    slack_app_token: SecretStr | None = Field(
        None, validation_alias=AliasChoices("SLACK_APP_TOKEN", "FW_SLACK_APP_TOKEN")
    )
    slack_signing_secret: SecretStr | None = Field(
        None, validation_alias=AliasChoices("SLACK_SIGNING_SECRET", "FW_SLACK_SIGNING_SECRET")
    )
    slack_client_id: SecretStr | None = Field(
        None, validation_alias=AliasChoices("SLACK_CLIENT_ID", "FW_SLACK_CLIENT_ID")
    )
    slack_client_secret: SecretStr | None = Field(
        None, validation_alias=AliasChoices("SLACK_CLIENT_SECRET", "FW_SLACK_CLIENT_SECRET")
    )
    slack_admins: str = Field("", description="comma-separated Slack user ids allowed to configure channels")
    slack_redirect_uri: str | None = Field(None, description="public https URL of /slack/oauth_redirect")
    webhooks_file: Path = Path("config/webhooks.toml")
    max_sources_per_channel: int = Field(10, ge=0, le=200)
    # --- delivery (issue 5)
    alert_min_score: float = Field(
        0.6, ge=0, le=1, description="alerts need this score unless the subscription sets its own minimum"
    )
    delivery_tick_seconds: float = Field(2.0, gt=0, description="outbox sweep when nothing woke it")
    digest_tick_seconds: float = Field(30.0, gt=0)
    delivery_lease_seconds: float = Field(
        120.0, ge=1, description="how long a crashed sender blocks a channel"
    )
    delivery_timeout_seconds: float = Field(60.0, gt=0)
    delivery_max_backoff_seconds: float = Field(600.0, gt=0)
    delivery_give_up_hours: float = Field(72.0, gt=0, description="a row still unsent after this fails")
    delivery_concurrency: int = Field(32, ge=1, le=1024, description="destinations served in parallel")
    discord_send_rate: float = Field(45.0, gt=0, description="messages/s, below Discord's global 50")
    followup_interval_minutes: int = Field(60, ge=1)
    source_notice_after_hours: float = Field(24.0, gt=0)
    # --- web console (issue 14; bot/console, docs/console.md)
    web_password: SecretStr | None = Field(
        None, description="the web console's sign-in password; unset (and no hash): the console is off"
    )
    web_password_hash: SecretStr | None = Field(
        None, description="an argon2 hash of the console password (`frontierwatch web hash-password`)"
    )
    web_secret: SecretStr | None = Field(
        None,
        description="key of the console's session cookie, 32+ characters, the same on every replica "
        "(unset: a random key per process, so sign-ins end at a restart)",
    )
    web_behind_proxy: bool = Field(
        False,
        description="a reverse proxy is in front: the sign-in limit reads the client address from "
        "X-Forwarded-For and the session cookie is Secure when X-Forwarded-Proto is https",
    )
    web_session_hours: float = Field(12.0, gt=0, le=24 * 30, description="a console sign-in lasts this long")
    # --- misc
    log_level: str = "INFO"
    port: int = Field(8080, ge=0, le=65535, validation_alias=AliasChoices("PORT", "FW_PORT"))
    host: str | None = Field(
        None,
        description="address every HTTP listener binds (unset: 127.0.0.1 for run's metrics listener, "
        "0.0.0.0 for the web server of serve, and of run with PORT)",
    )
    metrics_port: int | None = Field(
        None, ge=0, le=65535, description="run serves /metrics and /healthz on this port (unset: no listener)"
    )

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator("retention_days")
    @classmethod
    def _check_retention_days(cls, value: int) -> int:
        if 0 < value < MIN_RETENTION_DAYS:
            raise ValueError(
                f"must be 0 (keep everything) or at least {MIN_RETENTION_DAYS}: weekly digests and "
                "follow-ups read the last week's stories"
            )
        return value

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        upper = value.upper()
        if upper not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR")
        return upper

    @field_validator("host")
    @classmethod
    def _check_host(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or any(c.isspace() for c in value)):
            raise ValueError("must be an address or host name such as 127.0.0.1, 0.0.0.0 or ::")
        return value

    @field_validator("web_password_hash")
    @classmethod
    def _check_web_password_hash(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("$argon2"):
            raise ValueError(
                "must be an argon2 hash ($argon2id$…); make one with `frontierwatch web hash-password`"
            )
        return value

    @field_validator("web_password", "web_secret")
    @classmethod
    def _check_not_blank(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is None:
            return None
        if not value.get_secret_value().strip():
            raise ValueError("is empty; unset it instead")
        if info.field_name == "web_secret" and len(value.get_secret_value()) < 32:
            raise ValueError(
                "is too short: use at least 32 random characters, e.g. "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            )
        return value

    @field_validator("hf_api_base", "github_base", "discord_api_base", "slack_api_base")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        explicit = os.environ.get("FW_CONFIG_FILE")
        toml_path = Path(explicit or "config/frontierwatch.toml")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if explicit and not toml_path.is_file():
            raise SettingsError(f"FW_CONFIG_FILE={explicit}: no such file")
        if toml_path.is_file():
            try:
                data = tomllib.loads(toml_path.read_text(encoding="utf-8"))
                sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
            except (OSError, ValueError) as exc:  # unreadable, not UTF-8, or a TOML syntax error
                raise SettingsError(f"{toml_path}: {' '.join(str(exc).split())}") from None
            secrets = sorted(k for k in data if k in SECRET_FIELDS)
            if secrets:  # a file is committed, copied and backed up; a secret there leaks
                raise SettingsError(
                    f"{toml_path}: {secrets[0]} is a secret; secrets are read only from the environment "
                    f"({_setting_name((secrets[0],))})"
                )
        return tuple(sources)

    @model_validator(mode="after")
    def _check_slack_combination(self) -> Settings:
        """Half a Slack configuration must say so at start, not silently start no Slack."""
        bot, app_token = self.slack_bot_token is not None, self.slack_app_token is not None
        client_id, client_secret = self.slack_client_id is not None, self.slack_client_secret is not None
        if client_id != client_secret:
            missing = "SLACK_CLIENT_SECRET" if client_id else "SLACK_CLIENT_ID"
            raise ValueError(
                f"Slack OAuth needs SLACK_CLIENT_ID and SLACK_CLIENT_SECRET; {missing} is not set"
            )
        if app_token and not (bot or client_id):
            raise ValueError(
                "SLACK_APP_TOKEN (Socket Mode) also needs SLACK_BOT_TOKEN (or the OAuth client id/secret)"
            )
        return self

    def bind_host(self, listener: Literal["metrics", "web"]) -> str:
        """FW_HOST when set; else loopback for run's metrics listener (an operator opens it on
        purpose) and every address for the web server, as platforms' routers expect."""
        if self.host is not None:
            return self.host
        return "127.0.0.1" if listener == "metrics" else "0.0.0.0"

    @model_validator(mode="after")
    def _check_web_password_combination(self) -> Settings:
        if self.web_password is not None and self.web_password_hash is not None:
            raise ValueError(
                "set FW_WEB_PASSWORD or FW_WEB_PASSWORD_HASH, not both (which one would sign in?)"
            )
        return self

    @property
    def web_console_enabled(self) -> bool:
        """The console is on only when a password (or its hash) is set."""
        return self.web_password is not None or self.web_password_hash is not None

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def slack_admin_ids(self) -> frozenset[str]:
        return frozenset(part.strip() for part in self.slack_admins.split(",") if part.strip())


def hide_password(text: str) -> str:
    """A URL with its password (userinfo or ``password=`` query item) replaced by ``***``."""
    text = re.sub(r"(://[^:/@\s]*):[^@\s]*@", r"\1:***@", text)
    return re.sub(r"(?i)([?&](?:password|pass|pwd)=)[^&\s]*", r"\1***", text)


def _setting_name(loc: tuple[Any, ...]) -> str:
    field = str(loc[0]) if loc else "?"
    if field.isupper():  # pydantic names the alias the value came from (PORT, SLACK_BOT_TOKEN…)
        return field
    info = Settings.model_fields.get(field)
    alias = info.validation_alias if info else None
    if isinstance(alias, AliasChoices):
        names = [str(choice) for choice in alias.choices]
        given = [name for name in names if name in os.environ]  # the variable the user actually set
        return given[0] if given else " / ".join(names)
    return ENV_PREFIX + field.upper()


def misspelled_settings(environ: Mapping[str, str] | None = None) -> list[str]:
    """Warnings for ``FW_`` variables that name no setting, with the closest real name."""
    environ = os.environ if environ is None else environ
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields} | {
        "FW_CONFIG_FILE",
        "FW_TEST_POSTGRES_URL",
    }
    for info in Settings.model_fields.values():
        if isinstance(info.validation_alias, AliasChoices):
            known.update(str(choice) for choice in info.validation_alias.choices)
    warnings = []
    for name in sorted(environ):
        if name.startswith(ENV_PREFIX) and name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            warnings.append(f"{name} is not a Frontier Watch setting and is ignored{hint}")
    return warnings


def load_settings(**overrides: Any) -> Settings:
    """Build settings, turning a validation failure into one clear line naming the setting."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        if not first.get("loc"):  # a check across several settings (the Slack combination)
            raise SettingsError(str(first.get("msg", "")).removeprefix("Value error, ")) from None
        name = _setting_name(tuple(first.get("loc", ())))
        given = first.get("input")
        field = str(first.get("loc", ("",))[0]) if first.get("loc") else ""
        secret = field in SECRET_FIELDS or any(word in field for word in ("secret", "token", "password"))
        if isinstance(given, str):
            given = hide_password(given)
        shown = "" if secret or isinstance(given, dict) or given is None else f" (got {given!r})"
        if first.get("type") == "extra_forbidden":
            raise SettingsError(f"unknown setting {name} in the config file") from None
        raise SettingsError(f"invalid setting {name}: {first.get('msg')}{shown}") from None
