"""Builds the delivery services from settings (outbox worker, digest clock)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.services import Service

if TYPE_CHECKING:
    from bot.app import App


def delivery_services(app: App) -> list[Service]:
    """Not wired yet: new stories are printed by the console sink."""
    return []
