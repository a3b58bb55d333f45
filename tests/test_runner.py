"""`run_to_completion`: a command's loop ends even when a task refuses to stop."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from bot.runner import run_to_completion


async def _stubborn(started: asyncio.Event) -> None:
    # As a task waiting on a future nobody will complete (aiosqlite's close after its worker
    # thread exited): it swallows every cancel.
    started.set()
    while True:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            continue


async def _main_leaving_a_stubborn_task() -> str:
    started = asyncio.Event()
    asyncio.get_running_loop().create_task(_stubborn(started), name="stubborn-close")
    await started.wait()
    return "done"


def test_a_task_that_ignores_cancel_delays_the_exit_by_the_grace_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.runner"):
        began = time.monotonic()
        assert run_to_completion(_main_leaving_a_stubborn_task(), grace=0.2) == "done"
        took = time.monotonic() - began
    assert took < 30  # asyncio.run would never return here
    assert "1 task(s) still running" in caplog.text and "stubborn-close" in caplog.text


def test_tasks_that_stop_when_cancelled_end_quietly_and_errors_still_raise(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cleaned: list[str] = []

    async def polite() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            cleaned.append("polite")

    async def main() -> int:
        asyncio.get_running_loop().create_task(polite())
        await asyncio.sleep(0)
        return 7

    with caplog.at_level(logging.WARNING, logger="bot.runner"):
        assert run_to_completion(main(), grace=5) == 7
    assert cleaned == ["polite"] and "still running" not in caplog.text

    async def broken() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        run_to_completion(broken())
    # The loop is closed and unset each time: a later asyncio.run works.
    assert asyncio.run(asyncio.sleep(0, result=1)) == 1
