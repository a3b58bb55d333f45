"""`/watch pause` and `/watch resume`: stop and restart everything this channel receives.

A paused channel gets nothing queued: no alerts, follow-ups, digests or notices. Stories that
arrive meanwhile are not held for later, because a channel resumed after a week must not be
flooded with a week's backlog (as MonitoRSS does not); the first digest after resuming covers what
arrives from then on. `/watch resume` also resumes a channel the platform had marked unreachable
(deleted, bot removed), as any other configuration command does.
"""

from __future__ import annotations

from datetime import datetime

from handlers.context import HandlerDeps, channel_key
from handlers.digest import describe_schedule
from handlers.model import Command, Reply, UsageError, done, info

PAUSED_TITLE = "Paused: no alerts or digests until `/watch resume`."
USAGE = (
    "`/watch pause` — no alerts or digests in this channel until `/watch resume`",
    "`/watch resume` — alerts and digests again, from now on",
    "`/watch sources pause <id|name>` — pause just one feed this channel added",
)


def when(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC"


def describe_pause(by: str | None, at: datetime | None) -> str:
    who = f" by {by}" if by else ""
    return f"paused{who} since {when(at)}" if at is not None else "not paused"


def _no_arguments(command: Command) -> None:
    inv = command.invocation
    if inv.args:
        raise UsageError(f"`/watch {inv.group}` takes nothing after it, not `{inv.rest}`.", *USAGE)


async def pause(deps: HandlerDeps, command: Command) -> Reply:
    _no_arguments(command)
    by = command.user_name or command.user_id
    dest, newly, dropped = await deps.store.pause_channel(channel_key(command), by=by, now=deps.clock())
    if not newly:
        return info(
            f"This channel is already {describe_pause(dest.paused_by, dest.paused_at)}.",
            "Resume with `/watch resume`.",
        )
    lines = [
        "Stories that arrive while paused are not kept for this channel, so resuming posts no backlog; "
        "the first digest after `/watch resume` covers what arrives from then on.",
        "Settings are kept; other commands work as usual. `/watch status` shows the pause.",
    ]
    if dropped:
        lines.append(f"{dropped} {'post' if dropped == 1 else 'posts'} waiting to go out here were dropped.")
    return done(PAUSED_TITLE, *lines)


async def resume(deps: HandlerDeps, command: Command) -> Reply:
    _no_arguments(command)
    now = deps.clock()
    dest, was_paused, was_unreachable = await deps.store.resume_channel(channel_key(command), now=now)
    if dest is None or not (was_paused or was_unreachable):
        return info(
            "This channel is not paused: alerts and digests arrive as configured.",
            "`/watch status` shows its settings; `/watch pause` stops them.",
        )
    lines = []
    if was_paused:
        lines.append("Stories from now on are posted here; what arrived while it was paused is not.")
    if was_unreachable:
        lines.append(
            "The bot will try posting here again; if the channel is still unreachable it stops again."
        )
    lines.append("Digest: " + describe_schedule(dest, now))
    return done("Resumed: alerts and digests are back on in this channel.", *lines)
