"""Parse the text after `/watch` into an :class:`Invocation` (Slack sends one text string).

Discord builds the same Invocation from its structured options, so both platforms reach the same
handlers with the same shapes.
"""

from __future__ import annotations

import re

from handlers.model import ACTIONS, GROUPS, Invocation, UsageError

_WS = re.compile(r"\s+")


def _split_first(text: str) -> tuple[str, str]:
    parts = _WS.split(text.strip(), maxsplit=1)
    head = parts[0] if parts and parts[0] else ""
    return head, parts[1] if len(parts) > 1 else ""


MAX_COMMAND_CHARS = 4000  # Slack caps slash-command text near this; Discord options at 6000 in total


def parse_text(text: str) -> Invocation:
    """`subscribe distillation alerts 0.6` → Invocation("subscribe", None, ("distillation", "alerts", "0.6"))."""
    if len(text) > MAX_COMMAND_CHARS:  # before any splitting: quoting rules are costly on huge input
        raise UsageError(
            f"That command is {len(text):,} characters long; at most {MAX_COMMAND_CHARS:,} are read.",
            "Try `/watch help`.",
        )
    if "\x00" in text or any(ord(ch) < 32 and ch not in "\t\n\r" for ch in text):
        raise UsageError("The command contains control characters; type it again as plain text.")
    head, rest = _split_first(text)
    group = head.lower()
    if not group:
        return Invocation("help")
    if group not in GROUPS:
        raise UsageError(
            f"Unknown command `{head}`.",
            "Commands: " + ", ".join(f"`{g}`" for g in GROUPS) + ". Try `/watch help`.",
        )
    action: str | None = None
    actions = ACTIONS.get(group)
    if actions is not None:
        word, after = _split_first(rest)
        if word.lower() in actions:
            action, rest = word.lower(), after
        elif word:
            raise UsageError(
                f"`{group}` has no action `{word}`.",
                f"Use one of: {', '.join(f'`{group} {a}`' for a in actions)}.",
            )
    if (group, action) == ("alerts", "mention"):
        # `alerts mention list|remove <id>|off`: one word on Slack, a subcommand of its own on
        # Discord (see handlers/mentions.py); a target can never be one of these words.
        word, after = _split_first(rest)
        sub = word.lower()
        if sub == "list":
            action, rest = "mention-list", after
        elif sub == "remove":
            action, rest = "mention-remove", after
        elif sub == "off":
            action, rest = "mention-remove", f"all {after}"
    rest = rest.strip()
    return Invocation(group, action, tuple(rest.split()) if rest else (), rest)
