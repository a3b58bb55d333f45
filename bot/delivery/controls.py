"""The feedback controls under every alert: "Not relevant" and "Wrong topic…".

Their ids travel inside the posted message and come back with the reader's click, so the formats
live here, in one place, for the renderers (which put them on the message) and the chat adapters
(which read them back, in ``handlers.feedback``). Webhook destinations get no controls: a click on a
webhook's message reaches no app.
"""

from __future__ import annotations

from typing import Any

from bot.digest.common import topic_label

__all__ = [
    "DISCORD_NOT_RELEVANT",
    "DISCORD_WRONG_TOPIC",
    "NONE_OF_THESE",
    "SLACK_NOT_RELEVANT",
    "SLACK_WRONG_TOPIC",
    "discord_components",
    "slack_actions_block",
]

DISCORD_NOT_RELEVANT = "fw:fb:nr:"  # + delivery id
DISCORD_WRONG_TOPIC = "fw:fb:wt:"  # + delivery id; the select's values are topic names
SLACK_NOT_RELEVANT = "fw_fb_not_relevant"  # value: delivery id
SLACK_WRONG_TOPIC = "fw_fb_wrong_topic"  # option values: "<delivery id>:<topic>"
NONE_OF_THESE = "none"
MAX_OPTIONS = 24  # Discord and Slack allow 25 options; one is "None of these"


def discord_components(delivery_id: int, choices: list[str]) -> list[dict[str, Any]]:
    """Two action rows (Discord puts a select menu alone in its row): a button, a topic menu."""
    options = [{"label": topic_label(t)[:100], "value": t} for t in choices[:MAX_OPTIONS]]
    options.append({"label": "None of these", "value": NONE_OF_THESE})
    return [
        {
            "type": 1,
            "components": [
                {
                    "type": 2,
                    "style": 2,
                    "label": "Not relevant",
                    "custom_id": f"{DISCORD_NOT_RELEVANT}{delivery_id}",
                }
            ],
        },
        {
            "type": 1,
            "components": [
                {
                    "type": 3,
                    "custom_id": f"{DISCORD_WRONG_TOPIC}{delivery_id}",
                    "placeholder": "Wrong topic? Pick the right ones…",
                    "min_values": 1,
                    "max_values": len(options),
                    "options": options,
                }
            ],
        },
    ]


def slack_actions_block(delivery_id: int, choices: list[str]) -> dict[str, Any]:
    options = [
        {"text": {"type": "plain_text", "text": topic_label(t)[:75]}, "value": f"{delivery_id}:{t}"}
        for t in choices[:MAX_OPTIONS]
    ]
    options.append(
        {"text": {"type": "plain_text", "text": "None of these"}, "value": f"{delivery_id}:{NONE_OF_THESE}"}
    )
    return {
        "type": "actions",
        "block_id": f"fw_feedback_{delivery_id}",
        "elements": [
            {
                "type": "button",
                "text": {"type": "plain_text", "text": "Not relevant"},
                "action_id": SLACK_NOT_RELEVANT,
                "value": str(delivery_id),
            },
            {
                "type": "static_select",
                "action_id": SLACK_WRONG_TOPIC,
                "placeholder": {"type": "plain_text", "text": "Wrong topic…"},
                "options": options,
            },
        ],
    }
