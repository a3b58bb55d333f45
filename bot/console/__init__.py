"""The web console (issue 14): sign-in, sources, stories and channels pages, served by the same
aiohttp application as ``bot/web.py``. See docs/console.md."""

from bot.console.site import Console, install_console

__all__ = ["Console", "install_console"]
