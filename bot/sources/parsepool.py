"""Run :func:`~bot.sources.parser.parse_feed` off the event loop, in worker processes.

feedparser is pure Python and CPU-bound (tens of ms for an ordinary feed, seconds for a 10 MB one):
on the event loop it would stall Discord heartbeats, Slack acks and every other fetch, and a thread
would still hold the GIL. So parsing runs in a :class:`~concurrent.futures.ProcessPoolExecutor`.

* Workers are started with the ``forkserver`` method where available (Linux), else ``spawn``: the bot
  runs threads (aiohttp resolver, APScheduler), and ``fork`` from a threaded process can copy a
  held lock into the child and deadlock it.
* A worker that dies (segfault in a C extension, OOM kill) breaks the whole executor. The pool is then
  rebuilt; every feed whose parse was in flight in the broken executor gets ``error="parser
  crashed"`` (there is no telling which one killed it) and is simply retried at its next poll.
* ``workers=-1`` parses inline, in the calling thread, blocking the event loop while it runs. Meant
  for tests and very small installs (a handful of small feeds) where extra processes cost more than
  they save.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from types import TracebackType
from typing import Any

from bot.domain import ParsedFeed
from bot.sources.parser import parse_feed

__all__ = ["INLINE", "ParserPool"]

#: ``ParserPool(workers=INLINE)`` parses in the calling thread.
INLINE = -1


def _mp_context() -> multiprocessing.context.BaseContext:
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _warm_up() -> None:
    """Run in each new worker so the first real parse does not pay for importing feedparser."""


class ParserPool:
    """Parses feed bodies in worker processes without blocking the event loop.

    ``workers``: ``0`` = one per CPU core, ``n > 0`` = that many processes, ``-1`` (:data:`INLINE`) =
    no processes, parse in the calling thread. Processes start lazily on the first :meth:`parse`.
    Use as a (sync or async) context manager, or call :meth:`close`.
    """

    def __init__(self, workers: int = 0) -> None:
        if workers < INLINE:
            raise ValueError(f"workers must be -1 (inline), 0 (one per core) or positive, got {workers}")
        self.inline = workers == INLINE
        self.workers = 0 if self.inline else (workers or os.cpu_count() or 1)
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        self._closed = False
        self.crashes = 0  # how many times a worker died and the executor was rebuilt

    # --- lifecycle

    def _get_executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._closed:
                raise RuntimeError("ParserPool is closed")
            if self._executor is None:
                self._executor = ProcessPoolExecutor(
                    max_workers=self.workers,
                    mp_context=_mp_context(),
                    initializer=_warm_up,
                )
            return self._executor

    def _discard(self, broken: ProcessPoolExecutor) -> None:
        # Several parses fail together when their executor breaks; only the first replaces it, so a
        # late failure cannot throw away a fresh, healthy executor.
        with self._lock:
            if self._executor is not broken:
                return
            self._executor = None
            self.crashes += 1
        broken.shutdown(wait=False, cancel_futures=True)

    def worker_pids(self) -> list[int]:
        """Process ids of the live workers (for memory measurements)."""
        executor = self._executor
        processes = getattr(executor, "_processes", None) or {}
        return [p.pid for p in processes.values() if p.pid is not None]

    def close(self) -> None:
        """Stop the workers (waiting for running parses); further :meth:`parse` calls raise."""
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> ParserPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> ParserPool:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Waiting for worker shutdown must not block the loop.
        await asyncio.to_thread(self.close)

    # --- work

    async def parse(
        self,
        body: bytes,
        headers: Mapping[str, str],
        url: str,
        *,
        summary_chars: int = 400,
    ) -> ParsedFeed:
        """Parse one body; like :func:`parse_feed`, this reports failures in ``error``, never raises
        (except :class:`RuntimeError` after :meth:`close`, and cancellation)."""
        return await self.submit(parse_feed, body, dict(headers), url, summary_chars=summary_chars)

    async def submit(self, fn: Callable[..., ParsedFeed], /, *args: Any, **kwargs: Any) -> ParsedFeed:
        """Run any picklable, top-level parse function (e.g. ``trackers.parse_for_kind``) in the pool,
        with the same crash handling as :meth:`parse`."""
        call = partial(fn, *args, **kwargs)
        if self.inline:
            if self._closed:
                raise RuntimeError("ParserPool is closed")
            return call()
        loop = asyncio.get_running_loop()
        executor = self._get_executor()
        try:
            future = loop.run_in_executor(executor, call)
        except RuntimeError:
            # Refused at submit time: the executor was already broken (or replaced) by an earlier
            # crash. This feed was never run, so it goes to a fresh executor instead of failing.
            self._discard(executor)
            executor = self._get_executor()
            future = loop.run_in_executor(executor, call)
        try:
            return await future
        except BrokenProcessPool:
            self._discard(executor)
            return ParsedFeed(entries=[], error="parser crashed")
        except Exception as exc:  # e.g. a result that failed to unpickle: this feed fails alone
            return ParsedFeed(entries=[], error=f"parser failed: {type(exc).__name__}: {exc}"[:200])
