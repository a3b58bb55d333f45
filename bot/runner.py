"""Runs a command's coroutine to the end, and never hangs the process on the way out.

``asyncio.run`` cancels the tasks still running when the coroutine returns and then waits for them
with no limit. A task cancelled while aiosqlite is opening or closing a connection can wait forever
for the connection's worker thread, which has already exited (omnilib/aiosqlite#259): `frontierwatch
run` then printed "stopping…" and never stopped. :func:`run_to_completion` gives such tasks a grace
period after the cancel, names the ones that did not finish, and closes the loop anyway.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["SHUTDOWN_GRACE_SECONDS", "run_to_completion"]

T = TypeVar("T")
SHUTDOWN_GRACE_SECONDS = 10.0

log = logging.getLogger(__name__)


def run_to_completion(coro: Coroutine[Any, Any, T], *, grace: float = SHUTDOWN_GRACE_SECONDS) -> T:
    """As ``asyncio.run(coro)``, except that tasks left running at the end get ``grace`` seconds
    to finish once cancelled (and the default executor as long again), not forever."""
    loop = asyncio.new_event_loop()
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(coro)
    finally:
        try:
            _cancel_remaining(loop, grace)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(_bounded(loop.shutdown_default_executor(), grace))
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _cancel_remaining(loop: asyncio.AbstractEventLoop, grace: float) -> None:
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    if not pending:
        return
    for task in pending:
        task.cancel()
    done, stuck = loop.run_until_complete(asyncio.wait(pending, timeout=grace))
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            loop.call_exception_handler(
                {
                    "message": "unhandled exception during shutdown",
                    "exception": task.exception(),
                    "task": task,
                }
            )
    if stuck:
        names = ", ".join(sorted(task.get_name() for task in stuck))
        log.warning("%d task(s) still running %.0f s after stop, left behind: %s", len(stuck), grace, names)
        for task in stuck:
            # Said once above; asyncio would repeat it as "Task was destroyed but it is pending!"
            # at exit, after the command's own last line.
            task._log_destroy_pending = False  # type: ignore[attr-defined]


async def _bounded(awaitable: Coroutine[Any, Any, None], seconds: float) -> None:
    try:
        await asyncio.wait_for(awaitable, seconds)
    except TimeoutError:
        log.warning("worker threads still busy %.0f s after stop, left behind", seconds)
