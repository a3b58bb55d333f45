"""`/watch subscribe`, `unsubscribe` and `topics`."""

from __future__ import annotations

import difflib

from bot.store.chat import MODES
from handlers.context import HandlerDeps, channel_key
from handlers.model import Command, Reply, UsageError, done, info

USAGE = "`/watch subscribe <topic> [alerts|digest|both] [min-score 0..1]`"


def topic_list(deps: HandlerDeps) -> tuple[str, ...]:
    return tuple(f"`{name}` — {description}" for name, description in deps.topics.items())


def resolve_topic(deps: HandlerDeps, given: str) -> str:
    topic = given.strip().lower()
    if topic in deps.topics:
        return topic
    close = difflib.get_close_matches(topic, list(deps.topics), n=1, cutoff=0.5)
    hint = f" Did you mean `{close[0]}`?" if close else ""
    raise UsageError(f"Unknown topic `{given}`.{hint}", "Topics you can follow:", *topic_list(deps))


def parse_score(text: str) -> float:
    try:
        score = float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
    except ValueError:
        raise UsageError(
            f"`{text}` is neither a mode nor a score.",
            "After the topic, give a mode (`alerts`, `digest` or `both`) and/or a minimum score "
            "between 0 and 1 (e.g. `0.6`; `0` means the topic's own threshold).",
            f"Usage: {USAGE}",
        ) from None
    if not 0 <= score <= 1 or score != score:
        raise UsageError(
            f"Minimum score `{text}` is out of range.",
            "Give a number from 0 to 1, e.g. `0.6` (0 = the topic's own threshold).",
        )
    return round(score, 3)


async def subscribe(deps: HandlerDeps, command: Command) -> Reply:
    args = command.invocation.args
    if not args:
        raise UsageError("Which topic?", f"Usage: {USAGE}", "Topics:", *topic_list(deps))
    topic = resolve_topic(deps, args[0])
    mode, score = "both", 0.0
    seen_mode = seen_score = False
    for arg in args[1:]:
        if arg.lower() in MODES and not seen_mode:
            mode, seen_mode = arg.lower(), True
        elif not seen_score:
            score, seen_score = parse_score(arg), True
        else:
            raise UsageError(f"Unexpected `{arg}`.", f"Usage: {USAGE}")
    sub, created = await deps.store.subscribe(channel_key(command), topic, mode, score, now=deps.clock())
    what = {"alerts": "alerts only", "digest": "the digest only", "both": "alerts and the digest"}[mode]
    threshold = f"minimum score {sub.min_score:g}" if sub.min_score else "the topic's own threshold"
    verb = "Subscribed" if created else "Updated the subscription of"
    return done(f"{verb} this channel to `{topic}`.", f"Delivery: {what}; {threshold}.")


async def unsubscribe(deps: HandlerDeps, command: Command) -> Reply:
    args = command.invocation.args
    if len(args) != 1:
        raise UsageError("Which topic?", "Usage: `/watch unsubscribe <topic|all>`", *topic_list(deps))
    key = channel_key(command)
    if args[0].lower() == "all":
        removed = await deps.store.unsubscribe(key, None)
        if not removed:
            return info("This channel follows no topic; nothing to remove.")
        return done("Unsubscribed this channel from every topic.", "Removed: " + ", ".join(removed))
    topic = resolve_topic(deps, args[0])
    removed = await deps.store.unsubscribe(key, topic)
    if not removed:
        state = await deps.store.channel_state(key)
        following = ", ".join(f"`{s.topic}`" for s in state.subscriptions) or "none"
        return info(f"This channel is not subscribed to `{topic}`.", f"Subscribed topics: {following}.")
    return done(f"Unsubscribed this channel from `{topic}`.")


async def topics(deps: HandlerDeps, command: Command) -> Reply:
    state = await deps.store.channel_state(channel_key(command))
    mine = {s.topic: s for s in state.subscriptions}
    lines = []
    for name, description in deps.topics.items():
        sub = mine.get(name)
        mark = f" — subscribed ({sub.mode})" if sub else ""
        lines.append(f"`{name}`{mark}: {description}")
    lines.append(f"Subscribe with {USAGE}.")
    return info("Topics", *lines)
