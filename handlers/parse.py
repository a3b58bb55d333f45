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


def parse_text(text: str) -> Invocation:
    """`subscribe distillation alerts 0.6` → Invocation("subscribe", None, ("distillation", "alerts", "0.6"))."""
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
    rest = rest.strip()
    return Invocation(group, action, tuple(rest.split()) if rest else (), rest)
