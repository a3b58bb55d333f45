"""The image's HEALTHCHECK: asks the container's own process for ``/healthz``.

Which port depends on the command the container runs, read from ``/proc/1/cmdline`` (with
``init: true`` PID 1 is the init, whose arguments are the command):

- ``serve``: the web server on ``PORT`` (default 8080); its ``/healthz`` says the process answers.
- ``run`` (and ``poll`` without ``--once``): the metrics listener on ``FW_METRICS_PORT``, which the
  image sets to 9464; its ``/healthz`` answers 503 unless the scheduler runs and the database
  answers. With ``FW_METRICS_PORT`` unset there is nothing to ask, and the check fails saying so.
- anything else (``migrate``, ``stories``, a shell): nothing to check, healthy.

Settings are read as the process reads them (``FW_*`` environment and ``FW_CONFIG_FILE``).
Exit status 0 = healthy, 1 = unhealthy; one line on stdout, which ``docker inspect`` shows.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Literal

LONG_RUNNING = {"run", "serve", "poll"}


def command_of(argv: list[str]) -> str | None:
    """The frontierwatch subcommand in a process's argv: ``run``, ``serve``, ``poll`` (without
    ``--once``) or ``None`` for anything that is not a long-running frontierwatch process."""
    for i, arg in enumerate(argv):
        is_entry = arg.endswith("/frontierwatch") or arg == "frontierwatch"
        is_module = arg == "bot" and i > 0 and argv[i - 1] == "-m"
        if not (is_entry or is_module):
            continue
        rest = [a for a in argv[i + 1 :] if not a.startswith("-")]
        command = rest[0] if rest else None
        if command == "poll" and "--once" in argv[i + 1 :]:
            return None
        return command if command in LONG_RUNNING else None
    return None


def process_argv(pid: int) -> list[str]:
    raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]


def main_command() -> str | None:
    """The command of PID 1: the frontierwatch process itself, or an init (``docker run --init``,
    compose's ``init: true``) whose arguments name it."""
    return command_of(process_argv(1))


def probe_host(bind: str) -> str:
    if bind in ("", "0.0.0.0"):
        return "127.0.0.1"
    if bind == "::":
        return "[::1]"
    return f"[{bind}]" if ":" in bind else bind


def main() -> int:
    command = main_command()
    if command is None:
        print("healthy: no long-running frontierwatch process to check")
        return 0
    from bot.settings import SettingsError, load_settings

    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"unhealthy: {exc}")
        return 1
    listener: Literal["metrics", "web"]
    if command == "serve":
        port, listener = settings.port, "web"
    else:
        if settings.metrics_port is None:
            print("unhealthy: FW_METRICS_PORT is unset, so `run` serves no /healthz to check")
            return 1
        port, listener = settings.metrics_port, "metrics"
    url = f"http://{probe_host(settings.bind_host(listener))}:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            body = response.read(2000).decode("utf-8", "replace")
            print(f"healthy: {command} {url} {response.status} {body}")
            return 0
    except urllib.error.HTTPError as exc:
        body = exc.read(2000).decode("utf-8", "replace")
        print(f"unhealthy: {command} {url} {exc.code} {body}")
    except (OSError, ValueError) as exc:
        print(f"unhealthy: {command} {url}: {exc}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
