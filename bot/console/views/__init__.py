"""The console's pages, one module each, in menu order.

To add a page, write a module here with ``PAGE`` (and ``ACTIONS`` for its buttons), a template in
``bot/console/templates/`` that extends ``base.html``, and list the module below (docs/console.md).
"""

from __future__ import annotations

from types import ModuleType

from bot.console.views import channels, review, sources, stories, trends

PAGE_MODULES: tuple[ModuleType, ...] = (sources, stories, channels, review, trends)
