"""Run :func:`~bot.sources.parser.parse_feed` off the event loop, in worker processes.

feedparser is pure Python and CPU-bound (tens of ms for an ordinary feed, seconds for a 10 MB one):
on the event loop it would stall Discord heartbeats, Slack acks and every other fetch, and a thread
would still hold the GIL. So parsing runs in a pebble :class:`~pebble.ProcessPool`, which the standard
``ProcessPoolExecutor`` cannot replace: it kills a task's worker when the task runs past its time
limit (or is cancelled) and starts a fresh worker, without breaking the other parses.

* **Time limit** (``FW_PARSE_TIMEOUT``): a hostile document can make feedparser quadratic (500,000
  attributes on one element). Past the limit its worker is killed and replaced, and that source fails
  alone with ``"parse took longer than …"``.
* **Memory cap** (``FW_PARSE_MEMORY_MB``): each worker limits its own address space, so a document
  that expands in memory fails with ``MemoryError`` in its worker instead of swallowing the machine.
* A worker that dies (segfault in a C extension, OOM kill) fails only the parse it was running
  (``"parser crashed"``); pebble replaces it.
* Workers ignore Ctrl-C (the parent decides when to stop them) and, on Linux, die with their parent
  even when it is SIGKILLed (``PR_SET_PDEATHSIG``), so no orphan keeps a core busy.
* Workers are started with the ``forkserver`` method where available (Linux), else ``spawn``: the bot
  runs threads (aiohttp resolver, APScheduler), and ``fork`` from a threaded process can copy a
  held lock into the child and deadlock it.
* ``workers=-1`` parses inline, in the calling thread, blocking the event loop while it runs (and with
  no time limit). Meant for tests and very small installs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from functools import partial
from types import TracebackType
from typing import Any

from pebble import ProcessExpired, ProcessPool

from bot.domain import ParsedFeed
from bot.sources.parser import parse_feed

__all__ = ["INLINE", "ParserPool"]

log = logging.getLogger(__name__)

#: ``ParserPool(workers=INLINE)`` parses in the calling thread.
INLINE = -1


def _mp_context() -> multiprocessing.context.BaseContext:
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


_PR_SET_PDEATHSIG = 1


def _init_worker(memory_mb: int) -> None:
    """Run in each new worker: ignore Ctrl-C, die with the parent, cap the address space."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() == 1:  # the parent died before the line above ran
                os._exit(0)
    if memory_mb > 0:
        with contextlib.suppress(Exception):
            import resource

            limit = memory_mb * 1024 * 1024
            _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
            if hard != resource.RLIM_INFINITY:
                limit = min(limit, hard)
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


class ParserPool:
    """Parses feed bodies in worker processes without blocking the event loop.

    ``workers``: ``0`` = one per CPU core, ``n > 0`` = that many processes, ``-1`` (:data:`INLINE`) =
    no processes, parse in the calling thread. ``timeout``: seconds one parse may take (``None`` = no
    limit). ``memory_mb``: address-space cap of each worker (``0`` = none). Processes start lazily on
    the first :meth:`parse`. Use as a (sync or async) context manager, or call :meth:`close`.
    """

    def __init__(self, workers: int = 0, *, timeout: float | None = 60.0, memory_mb: int = 1024) -> None:
        if workers < INLINE:
            raise ValueError(f"workers must be -1 (inline), 0 (one per core) or positive, got {workers}")
        self.inline = workers == INLINE
        self.workers = 0 if self.inline else (workers or os.cpu_count() or 1)
        self.timeout = timeout
        self.memory_mb = memory_mb
        self._lock = threading.Lock()
        self._pool: ProcessPool | None = None
        self._running: set[concurrent.futures.Future[ParsedFeed]] = set()
        self._closed = False
        self.crashes = 0  # workers that died while parsing
        self.timeouts = 0  # parses stopped at the time limit

    # --- lifecycle

    def _get_pool(self) -> ProcessPool:
        with self._lock:
            if self._closed:
                raise RuntimeError("ParserPool is closed")
            if self._pool is None or not self._pool.active:
                self._pool = ProcessPool(
                    max_workers=self.workers,
                    initializer=_init_worker,
                    initargs=(self.memory_mb,),
                    context=_mp_context(),
                )
            return self._pool

    def worker_pids(self) -> list[int]:
        """Process ids of the live workers (for memory measurements)."""
        manager = getattr(getattr(self._pool, "_pool_manager", None), "worker_manager", None)
        workers = getattr(manager, "workers", None) or {}
        return [pid for pid, process in list(workers.items()) if process.is_alive()]

    def close(self) -> None:
        """Stop the workers at once (a running parse is abandoned); further :meth:`parse` calls
        raise. Never waits for a parse: a hostile document must not hold up a shutdown."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
            running, self._running = list(self._running), set()
        for future in running:
            future.cancel()  # pebble stops the worker running it
        if pool is not None:
            pool.stop()  # type: ignore[no-untyped-call]
            try:
                pool.join(timeout=10)
            except Exception as exc:  # pragma: no cover - pebble kills workers; this is a safety net
                log.warning("parser workers did not stop cleanly: %s", exc)

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
        # Joining the workers must not block the loop.
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
        with the same time limit and crash handling as :meth:`parse`."""
        if self.inline:
            if self._closed:
                raise RuntimeError("ParserPool is closed")
            return partial(fn, *args, **kwargs)()
        future = self._get_pool().schedule(fn, args=args, kwargs=kwargs, timeout=self.timeout)
        self._running.add(future)
        future.add_done_callback(self._running.discard)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():  # our caller was cancelled
                future.cancel()  # type: ignore[no-untyped-call]  # pebble stops the worker running it
                raise
            return ParsedFeed(entries=[], error="parse cancelled: the parser is shutting down")
        except concurrent.futures.TimeoutError:
            self.timeouts += 1
            return ParsedFeed(entries=[], error=f"parse took longer than {self.timeout:g}s: stopped")
        except ProcessExpired as exc:
            self.crashes += 1
            return ParsedFeed(entries=[], error=f"parser crashed (exit code {exc.exitcode})")
        except MemoryError:
            return ParsedFeed(entries=[], error=f"parser ran out of memory (limit {self.memory_mb} MB)")
        except Exception as exc:  # e.g. a result that failed to unpickle: this feed fails alone
            return ParsedFeed(entries=[], error=f"parser failed: {type(exc).__name__}: {exc}"[:200])
