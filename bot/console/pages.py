"""What a console page is, and the registry the navigation and the routes are built from.

A page is a module in ``bot/console/views/`` that defines ``PAGE`` (a :class:`Page`) and,
when it has buttons, ``ACTIONS`` (a tuple of :class:`Action`), with a template of the same name
in ``bot/console/templates/``; ``bot/console/views/__init__.py`` lists the modules in menu order.
Every page and action is signed-in only and every action is CSRF-checked by the registration in
``bot/console/site.py``: a view cannot forget either. See docs/console.md, "Adding a page".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from bot.console.site import Console

# A view: the request and the console (store, settings, topics) in, a response out.
View = Callable[[web.Request, "Console"], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Page:
    """A page in the menu: ``GET path``. ``extra_paths`` are more GET routes of the same page
    (a detail page such as ``/channels/{id}``), not in the menu."""

    path: str
    title: str
    view: View
    extra_paths: tuple[tuple[str, View], ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Action:
    """A button: ``POST path`` from a form carrying the CSRF token; it answers with a redirect
    (303) back to a page, with a one-line message for it (see ``auth.flash``)."""

    path: str
    view: View
