"""`/watch alerts mention`: ping a role or user group (or @here) on the alerts that matter.

    /watch alerts mention <@role|here> [topic <T>] [official] [min-score <X>]   add a rule
    /watch alerts mention list                                                  list the rules
    /watch alerts mention remove <id>|all      (or `mention off`)               remove rules

On Discord the list and remove forms are the sibling subcommands `/watch alerts mention-list` and
`/watch alerts mention-remove` (Discord nests commands only two levels below `/watch`); both
platforms reach the same handlers. A rule fires on an alert of this channel whose topics include
``T`` (any topic without it), whose cluster has an official source's story (with ``official``) and
whose score on ``T`` (its best score without ``T``) is at least ``X``. Digests never mention.

Targets as each platform sends them: Discord's role option arrives as ``<@&ID>`` (the adapter writes
it); Slack escapes a typed ``@team`` to ``<!subteam^ID|@team>`` (the manifest's ``should_escape``)
and ``@here`` to ``<!here>``; a bare user-group id ``S0123ABCD`` is accepted too.
"""

from __future__ import annotations

import re

from bot.store.chat import ChannelKey, MentionRuleView, TooManyMentionRules
from handlers.context import HandlerDeps, channel_key
from handlers.model import Command, Reply, UsageError, done, info

MAX_MENTION_RULES = 10  # per channel: each alert's mention line stays short and readable

_DISCORD_ROLE = re.compile(r"^<@&([0-9]{1,21})>$")
_SLACK_GROUP = re.compile(r"^<!subteam\^([A-Z0-9]{2,30})(?:\|([^<>]{0,200}))?>$")
_SLACK_GROUP_ID = re.compile(r"^S[A-Z0-9]{2,30}$")
_HERE = {"here", "@here", "!here", "<!here>", "<!here|here>", "<!here|@here>"}
_NUMBER = re.compile(r"^[0-9]*\.?[0-9]+$")

SYNTAX = "`/watch alerts mention <@role|here> [topic <T>] [official] [min-score <0-1>]`"
LIST_SYNTAX = {
    "discord": "`/watch alerts mention-list`, `/watch alerts mention-remove <id|all>`",
    "slack": "`/watch alerts mention list`, `/watch alerts mention remove <id|all>` (or `mention off`)",
}
TARGETS = {
    "discord": "a role (pick it in the `role` option) or `here: True` for @here",
    "slack": "a user group typed as `@group` (Slack sends it as `<!subteam^…>`), its id `S0123ABCD`, "
    "or `@here`",
}


def _targets(command: Command) -> str:
    return TARGETS.get(command.platform, TARGETS["slack"])


def _list_syntax(command: Command) -> str:
    return LIST_SYNTAX.get(command.platform, LIST_SYNTAX["slack"])


def target_text(rule: MentionRuleView, platform: str) -> str:
    """How a reply names the target (replies never ping: Discord embeds do not, Slack replies are
    escaped)."""
    if rule.target_kind == "here":
        return "@here"
    if platform == "discord":
        return f"<@&{rule.target_id}>"  # shown as the role's name in a reply embed
    return f"{rule.target_label} ({rule.target_id})" if rule.target_label else f"user group {rule.target_id}"


def describe(rule: MentionRuleView, platform: str) -> str:
    what = [f"`{rule.topic}`" if rule.topic else "any topic"]
    if rule.official:
        what.append("official sources only")
    if rule.min_score:
        what.append(f"score ≥ {rule.min_score:g}")
    return f"`#{rule.id}` {target_text(rule, platform)} — alerts on {', '.join(what)}"


def parse_target(command: Command, word: str) -> tuple[str, str, str]:
    """(kind, id, label) of the first argument, for this platform, or a UsageError saying what
    this platform accepts."""
    accepted = f"Say whom to mention: {_targets(command)}. Usage: {SYNTAX}."
    if word.lower() in _HERE:
        return "here", "", "@here"
    if command.platform == "discord":
        role = _DISCORD_ROLE.match(word)
        if role is None:
            raise UsageError(f"`{word}` is not a role.", accepted)
        if role.group(1) == command.workspace_id:
            # The @everyone role has the server's id; `<@&guild>` would not ping anyone properly.
            raise UsageError("@everyone cannot be mentioned by alerts.", accepted)
        return "group", role.group(1), ""
    group = _SLACK_GROUP.match(word)
    if group is not None:
        return "group", group.group(1), (group.group(2) or "").strip()
    if _SLACK_GROUP_ID.match(word):
        return "group", word, ""
    if word.startswith("@"):
        raise UsageError(
            f"`{word}` reached the bot as plain text, not as a user group.",
            "Slack sends `@group` as a mention only when the app escapes mentions "
            "(`should_escape: true` in config/slack-manifest.yml); otherwise give the group's id, "
            "e.g. `S0123ABCD` (Slack: the group's profile → ⋯ → Copy group ID).",
            accepted,
        )
    raise UsageError(f"`{word}` is not a user group or `here`.", accepted)


OPTION_WORDS = {"topic", "official", "min-score"}


def _is_target(word: str) -> bool:
    return bool(
        word.lower() in _HERE
        or _DISCORD_ROLE.match(word)
        or _SLACK_GROUP.match(word)
        or _SLACK_GROUP_ID.match(word)
    )


def parse_rule(deps: HandlerDeps, command: Command) -> MentionRuleView:
    args = list(command.invocation.args)
    if not args:
        raise UsageError(
            "Say whom to mention.", f"Usage: {SYNTAX}; {_targets(command)}.", _list_syntax(command)
        )
    if args[0].lower().replace("_", "-") in OPTION_WORDS:
        raise UsageError("Say whom to mention first.", f"Usage: {SYNTAX}; {_targets(command)}.")
    kind, target_id, label = parse_target(command, args[0])
    if len(args) > 1 and _is_target(args[1]):
        raise UsageError(
            "One rule mentions one target.",
            "Add a rule per role or group (they share one mention line when several fire).",
            f"Usage: {SYNTAX}.",
        )
    topic, official, min_score = "", False, 0.0
    seen: set[str] = set()
    options = "Options: `topic <T>`, `official`, `min-score <0-1>`, each at most once."
    rest = args[1:]
    while rest:
        word = rest.pop(0)
        name = word.lower().replace("_", "-")
        if name in seen:
            raise UsageError(f"`{word}` is given twice.", options)
        seen.add(name)
        if name == "topic":
            topics = ", ".join(f"`{t}`" for t in deps.topics)
            if not rest:
                raise UsageError("`topic` needs a topic name.", f"Topics: {topics}.")
            value = rest.pop(0).lower()
            if value not in deps.topics:
                raise UsageError(f"Unknown topic `{value}`.", f"Topics: {topics}.")
            topic = value
        elif name == "official":
            official = True
        elif name == "min-score":
            accepted = "Give a number above 0 and at most 1, e.g. `min-score 0.8`."
            if not rest:
                raise UsageError("`min-score` needs a number.", accepted)
            value = rest.pop(0)
            if not _NUMBER.match(value) or not 0 < float(value) <= 1:
                raise UsageError(f"`{value}` is not a score above 0 and at most 1.", accepted)
            min_score = float(value)
        else:
            raise UsageError(f"`{word}` is not an option of `alerts mention`.", options, f"Usage: {SYNTAX}.")
    return MentionRuleView(0, kind, target_id, label, topic, official, min_score)


async def add(deps: HandlerDeps, command: Command) -> Reply:
    rule = parse_rule(deps, command)
    key = channel_key(command)
    try:
        stored, created = await deps.store.add_mention_rule(
            key,
            rule,
            created_by=command.user_name or command.user_id,
            limit=MAX_MENTION_RULES,
            now=deps.clock(),
        )
    except TooManyMentionRules as exc:
        raise UsageError(
            f"This channel already has {exc.limit} mention rules, the most it can have.",
            f"Remove one first: {_list_syntax(command)}.",
        ) from None
    if not created:
        return info("That mention rule exists already.", describe(stored, command.platform))
    lines = [describe(stored, command.platform), "Digests never mention anyone; only alerts do."]
    warning = await _not_alerted(deps, key, stored)
    if warning:
        lines.append(warning)
    lines.append(f"See or remove rules: {_list_syntax(command)}.")
    return done(f"Mention rule #{stored.id} added.", *lines)


async def _not_alerted(deps: HandlerDeps, key: ChannelKey, rule: MentionRuleView) -> str:
    """A rule can only fire on alerts; say so when this channel gets none it could fire on."""
    state = await deps.store.channel_state(key)
    alerted = [s.topic for s in state.subscriptions if s.mode in ("alerts", "both")]
    if rule.topic and rule.topic not in alerted:
        return (
            f"This channel gets no alerts on `{rule.topic}` yet, so the rule waits until it does "
            f"(`/watch subscribe {rule.topic} alerts`)."
        )
    if not alerted:
        return "This channel gets no alerts yet (`/watch subscribe <topic> alerts`), so the rule waits."
    if state.destination is not None and state.destination.alert_cap_per_hour == 0:
        return "Alerts are off here (`/watch alerts cap 0`), so the rule waits until they are on."
    return ""


async def list_rules(deps: HandlerDeps, command: Command) -> Reply:
    if command.invocation.args:
        raise UsageError("`mention list` takes no arguments.", f"Usage: {_list_syntax(command)}.")
    rules = await deps.store.mention_rules(channel_key(command))
    if not rules:
        return info("No mention rules in this channel.", f"Add one: {SYNTAX}.")
    return info(
        "Mention rules in this channel",
        *(describe(r, command.platform) for r in rules),
        f"Remove: {_list_syntax(command)}.",
    )


async def remove(deps: HandlerDeps, command: Command) -> Reply:
    args = command.invocation.args
    accepted = f"Give a rule's id from the list (e.g. `3`) or `all`: {_list_syntax(command)}."
    if len(args) != 1:
        raise UsageError("Give one rule id, or `all`." if args else "Which rule?", accepted)
    word = args[0].lstrip("#")
    key = channel_key(command)
    if word.lower() == "all":
        removed = await deps.store.remove_mention_rules(key, None)
        if not removed:
            return info("No mention rules in this channel; nothing to remove.")
        return done(
            f"All {len(removed)} mention rule{'s' if len(removed) != 1 else ''} removed.",
            "Alerts here mention no one now.",
        )
    if not word.isdigit() or not 0 < int(word) < 2**31:
        raise UsageError(f"`{args[0]}` is not a rule id.", accepted)
    removed = await deps.store.remove_mention_rules(key, [int(word)])
    if not removed:
        raise UsageError(f"This channel has no mention rule #{word}.", accepted)
    return done(f"Mention rule #{word} removed.", describe(removed[0], command.platform))
