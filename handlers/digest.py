"""`/watch digest now | time HH:MM [Area/City] | frequency daily|weekly [day]|off | quiet on|off |
repeats on|off`."""

from __future__ import annotations

import difflib
import logging
import re
import zoneinfo
from datetime import datetime
from functools import cache
from zoneinfo import ZoneInfo

from bot.store.chat import WEEKDAYS, DestinationView
from handlers.context import HandlerDeps, channel_key
from handlers.model import Command, Reply, UsageError, done, error, info

log = logging.getLogger(__name__)

_POPULAR_ZONES = (
    "UTC",
    "Europe/London",
    "Europe/Berlin",
    "America/New_York",
    "America/Los_Angeles",
    "Asia/Tokyo",
    "Asia/Shanghai",
    "Asia/Kolkata",
    "Australia/Sydney",
)
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
USAGE = (
    "`/watch digest now`",
    "`/watch digest time HH:MM [Area/City]` — e.g. `digest time 08:30 Europe/Berlin`",
    "`/watch digest frequency daily|weekly [mon..sun]|off`",
    "`/watch digest quiet on|off` — a one-line “quiet day” when a digest has no stories",
    "`/watch digest repeats on|off` — list stories already alerted here in the digest too",
)
_SWITCH = {"on": True, "off": False}


@cache
def timezones() -> tuple[str, ...]:
    """IANA zone names, without the legacy aliases nobody should pick (``posix/``, ``Etc/GMT+5``)."""
    names = {z for z in zoneinfo.available_timezones() if not z.startswith(("posix/", "right/"))}
    return tuple(sorted(names))


@cache
def _by_folded() -> dict[str, str]:
    return {z.lower(): z for z in timezones()}


def resolve_timezone(given: str) -> str:
    """The canonical IANA name for ``given`` (case-insensitive), or UsageError with a suggestion."""
    exact = _by_folded().get(given.strip().lower())
    if exact is not None:
        return exact
    folded = given.strip().lower().replace(" ", "_")
    close = difflib.get_close_matches(folded, list(_by_folded()), n=3, cutoff=0.5)
    if not close:
        # "Berlin" alone: match on the city part.
        cities = {z.rsplit("/", 1)[-1].lower(): z for z in timezones()}
        close = [cities[c].lower() for c in difflib.get_close_matches(folded, list(cities), n=3, cutoff=0.6)]
    names = [_by_folded()[c] for c in close]
    hint = f" Did you mean `{names[0]}`?" if names else ""
    also = f" Other close names: {', '.join(f'`{n}`' for n in names[1:])}." if len(names) > 1 else ""
    raise UsageError(
        f"Unknown time zone `{given}`.{hint}",
        "Use an IANA name in Area/City form, such as `Europe/Berlin`, `America/New_York`, `Asia/Tokyo` or `UTC`."
        + also,
    )


def search_timezones(prefix: str, limit: int = 25) -> list[str]:
    """Autocomplete: zones containing what was typed, those starting with it first."""
    typed = prefix.strip().lower().replace(" ", "_")
    if not typed:
        return list(_POPULAR_ZONES)
    starts = [z for z in timezones() if z.lower().startswith(typed)]
    contains = [z for z in timezones() if typed in z.lower() and z not in starts]
    return (starts + contains)[:limit]


def parse_time(text: str) -> str:
    match = _TIME.match(text.strip())
    if not match:
        raise UsageError(
            f"`{text}` is not a time.",
            "Give a 24-hour time as HH:MM, e.g. `08:00` or `17:30`, optionally followed by a time zone.",
        )
    return f"{int(match.group(1)):02d}:{match.group(2)}"


def describe_schedule(dest: DestinationView | None, now: datetime) -> str:
    if dest is None:
        return "Daily at 08:00 UTC (the default; nothing is configured for this channel yet)."
    if dest.digest_frequency == "off":
        return "Digests are off for this channel."
    when = f"at {dest.digest_time} {dest.timezone}"
    cadence = (
        f"Every {_day_name(dest.digest_weekday)} {when}"
        if dest.digest_frequency == "weekly"
        else f"Daily {when}"
    )
    if dest.next_digest_at is None:
        return cadence + "."
    local = dest.next_digest_at.astimezone(ZoneInfo(dest.timezone))
    return (
        f"{cadence}; next: {local:%a %Y-%m-%d %H:%M} {dest.timezone} (in {_until(dest.next_digest_at, now)})."
    )


def _day_name(day: str) -> str:
    return {
        "mon": "Monday",
        "tue": "Tuesday",
        "wed": "Wednesday",
        "thu": "Thursday",
        "fri": "Friday",
        "sat": "Saturday",
        "sun": "Sunday",
    }[day]


def _until(when: datetime, now: datetime) -> str:
    minutes = max(0, int((when - now).total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{hours // 24} days"


def describe_quiet(dest: DestinationView | None) -> str:
    if dest is not None and dest.quiet_day_notice:
        return "on — a digest period without stories posts a one-line “quiet day”"
    return "off — a digest period without stories posts nothing"


def describe_repeats(dest: DestinationView | None) -> str:
    if dest is not None and dest.repeat_alerted_in_digest:
        return "on — the digest also lists stories already alerted in this channel"
    return "off — stories already alerted in this channel are left out of the digest"


async def show(deps: HandlerDeps, command: Command) -> Reply:
    dest = await deps.store.destination(channel_key(command))
    return info(
        "Digest schedule",
        describe_schedule(dest, deps.clock()),
        "Quiet-day notice: " + describe_quiet(dest) + ".",
        "Already-alerted stories: " + describe_repeats(dest) + ".",
        *USAGE,
    )


async def now(deps: HandlerDeps, command: Command) -> Reply:
    runner = deps.digests()
    if runner is None:
        return error(
            "Digests are not enabled in this installation.",
            "The operator has to run the delivery worker (`frontierwatch run`) for digests to be sent.",
        )
    state = await deps.store.channel_state(channel_key(command))
    if state.destination is not None and state.destination.paused_at is not None:
        return error(
            "This channel is paused, so no digest is posted here.", "Resume it first with `/watch resume`."
        )
    if state.destination is None or not state.subscriptions:
        return error(
            "This channel follows no topic, so its digest would be empty.",
            "Subscribe first, e.g. `/watch subscribe distillation`.",
        )
    try:
        count = await runner.digest_now(state.destination.id)
    except Exception:  # the user gets a clear line; the operator gets the traceback
        log.exception("digest_now failed for destination %s", state.destination.id)
        return error("The digest could not be prepared; the error was logged for the operator.")
    if count == 0:
        return info("No new stories for this channel's topics since the last digest.")
    return done(f"Digest with {count} {'story' if count == 1 else 'stories'} is on its way.")


async def set_time(deps: HandlerDeps, command: Command) -> Reply:
    args = command.invocation.args
    if not 1 <= len(args) <= 2:
        raise UsageError("Give a time, and optionally a time zone.", *USAGE[1:2])
    digest_time = parse_time(args[0])
    zone = resolve_timezone(args[1]) if len(args) == 2 else None
    dest = await deps.store.set_digest_schedule(
        channel_key(command), digest_time=digest_time, timezone=zone, now=deps.clock()
    )
    lines = [describe_schedule(dest, deps.clock())]
    if dest.digest_frequency == "off":
        lines.append("Turn them on with `/watch digest frequency daily`.")
    return done(f"Digest time set to {dest.digest_time} {dest.timezone}.", *lines)


async def set_frequency(deps: HandlerDeps, command: Command) -> Reply:
    args = [a.lower() for a in command.invocation.args]
    accepted = "Use `daily`, `weekly` (optionally with a day, e.g. `weekly fri`) or `off`."
    if not args or args[0] not in ("daily", "weekly", "off"):
        shown = f"`{command.invocation.args[0]}` is not a frequency." if args else "Which frequency?"
        raise UsageError(shown, accepted)
    weekday = None
    if len(args) > 1:
        if args[0] != "weekly" or len(args) > 2 or args[1][:3] not in WEEKDAYS:
            raise UsageError(f"Unexpected `{' '.join(command.invocation.args[1:])}`.", accepted)
        weekday = args[1][:3]
    dest = await deps.store.set_digest_schedule(
        channel_key(command), frequency=args[0], weekday=weekday, now=deps.clock()
    )
    title = "Digests turned off." if args[0] == "off" else f"Digest frequency set to {args[0]}."
    return done(title, describe_schedule(dest, deps.clock()))


def parse_switch(command: Command, usage: str) -> bool:
    """``on`` → True, ``off`` → False (case-insensitive); anything else is a UsageError."""
    args = command.invocation.args
    if len(args) == 1 and args[0].lower() in _SWITCH:
        return _SWITCH[args[0].lower()]
    shown = f"`{' '.join(args)}` is not `on` or `off`." if args else "On or off?"
    raise UsageError(shown, f"Use {usage}.")


def _digests_off_note(dest: DestinationView) -> tuple[str, ...]:
    if dest.digest_frequency != "off":
        return ()
    return ("Digests are off for this channel; turn them on with `/watch digest frequency daily`.",)


async def set_quiet(deps: HandlerDeps, command: Command) -> Reply:
    on = parse_switch(command, USAGE[3].split(" — ")[0])
    dest = await deps.store.set_delivery_options(channel_key(command), quiet_day_notice=on, now=deps.clock())
    title = "Quiet-day notice turned on." if on else "Quiet-day notice turned off."
    return done(title, f"Quiet-day notice: {describe_quiet(dest)}.", *_digests_off_note(dest))


async def set_repeats(deps: HandlerDeps, command: Command) -> Reply:
    on = parse_switch(command, USAGE[4].split(" — ")[0])
    dest = await deps.store.set_delivery_options(
        channel_key(command), repeat_alerted_in_digest=on, now=deps.clock()
    )
    title = (
        "The digest will repeat stories already alerted here."
        if on
        else "The digest will leave out stories already alerted here."
    )
    return done(title, f"Already-alerted stories: {describe_repeats(dest)}.", *_digests_off_note(dest))
