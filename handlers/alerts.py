"""`/watch alerts [cap <0-60>]`: how many immediate alerts a channel gets per hour.

(`/watch alerts mention …`, whom alerts ping, lives in handlers/mentions.py.)

Alerts beyond the cap are not dropped: the delivery side moves them to the channel's next digest,
which says so in a note. A cap of 0 turns alerts off for the channel: everything goes to the digest.
"""

from __future__ import annotations

import re

from bot.store.chat import ALERT_CAP_DEFAULT, ALERT_CAP_MAX, DestinationView
from handlers import mentions
from handlers.context import HandlerDeps, channel_key
from handlers.model import Command, Reply, UsageError, done, info

_INTEGER = re.compile(r"^[+-]?[0-9]+$")
DEFAULT_CAP = ALERT_CAP_DEFAULT
USAGE = (
    f"`/watch alerts cap <0-{ALERT_CAP_MAX}>` — most alerts per hour; "
    "more go to the next digest with a note; 0 = no alerts, everything goes to the digest",
)


def describe_cap(dest: DestinationView | None) -> str:
    cap = dest.alert_cap_per_hour if dest is not None else DEFAULT_CAP
    if cap == 0:
        return "off (cap 0) — every story goes to the next digest instead"
    return f"at most {cap} per hour — more go to the next digest, with a note"


async def show(deps: HandlerDeps, command: Command) -> Reply:
    dest = await deps.store.destination(channel_key(command))
    rules = await deps.store.mention_rules(channel_key(command))
    lines = [f"Alerts: {describe_cap(dest)}."]
    if rules:
        lines.append("Mentions:")
        lines.extend(f"• {mentions.describe(r, command.platform)}" for r in rules)
    else:
        lines.append("Mentions: none.")
    return info("Alerts in this channel", *lines, *USAGE, f"{mentions.SYNTAX} — ping on matching alerts")


def parse_cap(command: Command) -> int:
    args = command.invocation.args
    accepted = f"Give a whole number from 0 to {ALERT_CAP_MAX}, e.g. `/watch alerts cap 3` (0 = no alerts)."
    if len(args) != 1:
        raise UsageError(
            "Give one number: the most alerts per hour." if not args else "Give one number.", accepted
        )
    text = args[0].strip()
    if not _INTEGER.match(text):
        raise UsageError(f"`{text}` is not a whole number.", accepted)
    cap = int(text)
    if not 0 <= cap <= ALERT_CAP_MAX:
        raise UsageError(f"Alert cap `{text}` is out of range.", accepted)
    return cap


async def set_cap(deps: HandlerDeps, command: Command) -> Reply:
    cap = parse_cap(command)
    dest = await deps.store.set_delivery_options(
        channel_key(command), alert_cap_per_hour=cap, now=deps.clock()
    )
    title = "Alerts turned off in this channel." if cap == 0 else f"Alert cap set to {cap} per hour."
    lines = [f"Alerts: {describe_cap(dest)}."]
    if dest.digest_frequency == "off":
        lines.append(
            "Digests are off for this channel, so stories over the cap wait until they are turned on "
            "(`/watch digest frequency daily`)."
        )
    return done(title, *lines)
