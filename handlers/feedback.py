"""Readers' feedback on an alert: the platform-neutral core behind the "Not relevant" button and the
"Wrong topic…" menu that every alert carries on Discord and Slack.

The adapters decode the platform's click into a :class:`FeedbackClick`; :func:`record_feedback`
stores it as a labelled example (who, when, which topics) and returns the ephemeral acknowledgement.
The control ids are defined with the renderers, in ``bot.delivery.controls``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.delivery.controls import (
    DISCORD_NOT_RELEVANT,
    DISCORD_WRONG_TOPIC,
    NONE_OF_THESE,
    SLACK_NOT_RELEVANT,
    SLACK_WRONG_TOPIC,
)
from bot.store.feedback import FeedbackError, FeedbackStore
from handlers.model import Reply, error, info

__all__ = [
    "DISCORD_NOT_RELEVANT",
    "DISCORD_WRONG_TOPIC",
    "NONE_OF_THESE",
    "SLACK_NOT_RELEVANT",
    "SLACK_WRONG_TOPIC",
    "FeedbackClick",
    "parse_discord_custom_id",
    "parse_slack_action",
    "record_feedback",
]


@dataclass(frozen=True, slots=True)
class FeedbackClick:
    platform: str  # discord | slack
    channel_id: str
    user_id: str
    delivery_id: int
    kind: str  # not_relevant | wrong_topic
    topics: tuple[str, ...] = ()  # for wrong_topic: the topics the reader says it belongs to


def parse_slack_action(action: dict[str, object]) -> tuple[int, str, tuple[str, ...]] | None:
    """(delivery id, kind, topics) of a Slack block action, or None if it is not ours."""
    action_id = action.get("action_id")
    if action_id == SLACK_NOT_RELEVANT:
        value = str(action.get("value") or "")
        return (int(value), "not_relevant", ()) if value.isdigit() else None
    if action_id == SLACK_WRONG_TOPIC:
        selected = action.get("selected_option")
        value = str(selected.get("value") or "") if isinstance(selected, dict) else ""
        delivery, _, topic = value.partition(":")
        if not delivery.isdigit() or not topic:
            return None
        return int(delivery), "wrong_topic", () if topic == NONE_OF_THESE else (topic,)
    return None


def parse_discord_custom_id(custom_id: str, values: list[str]) -> tuple[int, str, tuple[str, ...]] | None:
    """(delivery id, kind, topics) of a feedback control, or None if the id is not ours."""
    for prefix, kind in ((DISCORD_NOT_RELEVANT, "not_relevant"), (DISCORD_WRONG_TOPIC, "wrong_topic")):
        if custom_id.startswith(prefix):
            rest = custom_id.removeprefix(prefix)
            if not rest.isdigit():
                return None
            topics = tuple(v for v in values if v != NONE_OF_THESE) if kind == "wrong_topic" else ()
            return int(rest), kind, topics
    return None


async def record_feedback(
    store: FeedbackStore, click: FeedbackClick, known_topics: tuple[str, ...], now: datetime | None = None
) -> Reply:
    try:
        recorded = await store.record(
            click.delivery_id,
            platform=click.platform,
            channel_id=click.channel_id,
            user_id=click.user_id,
            kind=click.kind,
            topics=click.topics,
            known_topics=known_topics,
            now=now,
        )
    except FeedbackError as exc:
        return error("Your feedback could not be recorded.", str(exc))
    title = recorded.title if len(recorded.title) <= 120 else recorded.title[:119] + "…"
    if recorded.kind == "not_relevant":
        verdict = "Noted: this story is not relevant to any topic."
    elif recorded.topics:
        verdict = "Noted: this story belongs to " + ", ".join(f"`{t}`" for t in recorded.topics) + "."
    else:
        verdict = "Noted: this story belongs to none of the topics."
    lines = [f"“{title}”", verdict]
    if recorded.replaced:
        lines.append("It replaces your earlier feedback on this alert.")
    lines.append("Thanks — operators use it to retrain the classifier (`frontierwatch train --feedback`).")
    return info("Thanks for the feedback", *lines)
