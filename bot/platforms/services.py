"""Builds the chat-platform services from settings (Discord gateway, Slack app, web server)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.services import Service

if TYPE_CHECKING:
    from bot.app import App


def platform_services(app: App) -> list[Service]:
    """No platform is wired yet: the console is the only destination."""
    return []
