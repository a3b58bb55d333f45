"""The container files: the health check's choice of port, and what the Dockerfile, .dockerignore
and compose.yaml promise (the smoke test that builds and runs them is ``container/smoke``)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

from bot.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parent.parent


def _healthcheck() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fw_healthcheck", ROOT / "container" / "healthcheck.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["/opt/frontierwatch/bin/python3", "/opt/frontierwatch/bin/frontierwatch", "run"], "run"),
        (["/opt/frontierwatch/bin/python3", "/opt/frontierwatch/bin/frontierwatch", "serve"], "serve"),
        (["/sbin/docker-init", "--", "frontierwatch", "serve"], "serve"),  # compose's init: true
        (["python", "-m", "bot", "run"], "run"),
        (["frontierwatch", "poll"], "poll"),
        (["frontierwatch", "poll", "--once"], None),
        (["frontierwatch", "migrate"], None),
        (["frontierwatch", "--help"], None),
        (["sh"], None),
    ],
)
def test_healthcheck_reads_the_command(argv: list[str], command: str | None) -> None:
    assert _healthcheck().command_of(argv) == command


def test_healthcheck_probes_loopback_for_wildcard_binds() -> None:
    probe_host = _healthcheck().probe_host
    assert probe_host("0.0.0.0") == "127.0.0.1"
    assert probe_host("::") == "[::1]"
    assert probe_host("10.0.0.5") == "10.0.0.5"
    assert probe_host("fd00::5") == "[fd00::5]"


def test_dockerfile_runs_as_a_user_with_a_health_check_and_run_health() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11-slim", text, re.M)
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert "HEALTHCHECK" in text
    # `run` serves /healthz only with FW_METRICS_PORT; the image must set it for the health check.
    assert re.search(r"FW_METRICS_PORT=\d+", text)
    assert "metrics_port" in Settings.model_fields
    assert not re.search(r"^COPY\s+(\.|\.env)\s", text, re.M)  # never the whole context or .env


def test_dockerignore_keeps_secrets_and_local_state_out() -> None:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    for pattern in ("**/.env", ".venv/", "data/", "tests/", "config/labelled/", "config/coverage/", ".git/"):
        assert pattern in lines


def test_compose_sets_the_real_database_setting() -> None:
    text = (ROOT / "compose.yaml").read_text(encoding="utf-8")
    assert f"{ENV_PREFIX}DATABASE_URL: postgresql+asyncpg://" in text
    assert "database_url" in Settings.model_fields
    assert "condition: service_healthy" in text
    assert re.search(r"^\s+- pgdata:/var/lib/postgresql/data$", text, re.M)
    # Variables of compose.yaml itself must not look like settings (they would warn at start).
    own = set(re.findall(r"\$\{([A-Z_]+)", text))
    assert own and not {v for v in own if v.startswith(ENV_PREFIX)}
