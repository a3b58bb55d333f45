"""`/watch status` and `/watch help`."""

from __future__ import annotations

from bot.store.chat import ALERT_CAP_MAX
from handlers import alerts, digest, mentions, pause, sources
from handlers.context import HandlerDeps, channel_key
from handlers.model import Command, Reply, info

HELP = (
    ("`/watch subscribe <topic> [alerts|digest|both] [min-score]`", "follow a topic", True),
    ("`/watch unsubscribe <topic|all>`", "stop following", True),
    ("`/watch topics`", "the topics and what this channel follows", False),
    ("`/watch digest now`", "post this channel's digest now", True),
    ("`/watch digest time HH:MM [Area/City]`", "when the daily digest arrives", True),
    ("`/watch digest frequency daily|weekly [day]|off`", "how often", True),
    (
        "`/watch digest quiet on|off`",
        "a one-line “quiet day” when a digest has no stories; off by default",
        True,
    ),
    (
        "`/watch digest repeats on|off`",
        "also list stories already alerted here in the digest; off by default",
        True,
    ),
    (
        f"`/watch alerts cap <0-{ALERT_CAP_MAX}>`",
        f"most alerts per hour (default {alerts.DEFAULT_CAP}); more go to the next digest; "
        "0 = no alerts, digest only",
        True,
    ),
    (
        "`/watch alerts mention <@role|here> [topic <T>] [official] [min-score <0-1>]`",
        "ping a role/user group or @here on matching alerts (never in digests)",
        True,
    ),
    (
        "`/watch alerts mention list` / `remove <id|all>` (Discord: `mention-list`, `mention-remove`)",
        "this channel's mention rules",
        False,
    ),
    ("`/watch sources list`", "feeds this channel added, with their health", False),
    ("`/watch sources add <url>` / `remove <id>`", "watch an extra feed", True),
    (
        "`/watch sources pause <id|name>` / `resume <id|name>`",
        "stop or restart polling a feed this channel added (built-in feeds: the operator's CLI)",
        True,
    ),
    (
        "`/watch keywords add|remove <words>`",
        'narrow the topics, e.g. `nvidia "export controls" -whisky`',
        True,
    ),
    ("`/watch keywords list`", "this channel's keywords", False),
    ("`/watch search <words>`", 'stored stories best matching the words; "phrases", topic:, since:', False),
    ("`/watch pause`", "no alerts or digests here until resumed; nothing piles up meanwhile", True),
    ("`/watch resume`", "alerts and digests again, from now on (also after the bot lost access)", True),
    ("`/watch status`", "everything about this channel", False),
)


async def status(deps: HandlerDeps, command: Command) -> Reply:
    state = await deps.store.channel_state(channel_key(command))
    now = deps.clock()
    if state.destination is None:
        return info(
            "This channel is not set up yet.",
            "Start with `/watch topics`, then `/watch subscribe <topic>`.",
        )
    dest = state.destination
    lines = []
    if dest.paused_at is not None:
        lines.append(
            f"⏸ P{pause.describe_pause(dest.paused_by, dest.paused_at)[1:]}: "
            "no alerts or digests until `/watch resume`."
        )
    if not dest.active:
        lines.append(
            f"⚠ Posting here is paused: {dest.inactive_reason or 'no reason recorded'}. "
            "`/watch resume` (or any settings change) makes the bot try again."
        )
    if state.subscriptions:
        lines.append("Topics:")
        for sub in state.subscriptions:
            score = f", min score {sub.min_score:g}" if sub.min_score else ""
            lines.append(f"• `{sub.topic}` — {sub.mode}{score}")
    else:
        lines.append("Topics: none yet (`/watch subscribe <topic>`).")
    paused = "(paused) " if dest.paused_at is not None else ""
    lines.append(f"Digest: {paused}" + digest.describe_schedule(dest, now))
    lines.append(f"Alerts: {alerts.describe_cap(dest)}.")
    rules = await deps.store.mention_rules(channel_key(command))
    if rules:
        lines.append("Mentions on alerts:")
        lines.extend(f"• {mentions.describe(r, command.platform)}" for r in rules)
    lines.append(f"Quiet-day notice: {digest.describe_quiet(dest)}.")
    lines.append(f"Already-alerted stories: {digest.describe_repeats(dest)}.")
    if state.include or state.exclude:
        words = [f"`{w}`" for w in state.include] + [f"`-{w}`" for w in state.exclude]
        lines.append("Keywords: " + ", ".join(words))
    else:
        lines.append("Keywords: none")
    if state.sources:
        lines.append(f"Sources added here ({len(state.sources)} of {deps.max_sources_per_channel}):")
        lines.extend(f"• `{s.id}` {s.name} — {sources.health(s, now)}" for s in state.sources)
    else:
        lines.append("Sources added here: none")
    if deps.feedback is not None:
        judged = await deps.feedback.count_for_channel(command.platform, command.channel_id)
        lines.append(
            f"Feedback on alerts from this channel: {judged} "
            f"({'thanks — ' if judged else ''}use “Not relevant” or “Wrong topic…” under an alert)."
        )
    return info("Frontier Watch in this channel", *lines)


async def help_(deps: HandlerDeps, command: Command) -> Reply:
    lines = [f"{usage} — {what}{' (channel managers)' if manage else ''}" for usage, what, manage in HELP]
    lines.append(f"Changing settings needs {command.rights.required}; reading is open to everyone.")
    lines.append("Topics: " + ", ".join(f"`{t}`" for t in deps.topics))
    return info("Frontier Watch commands", *lines)
