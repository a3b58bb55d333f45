"""Review: stories near a topic's threshold and stories readers judged in chat, each labelled with
one click by the labelling guide's topics (or none). Labels go to ``review_labels`` through
``ReviewStore.store_label``, where `frontierwatch feedback export` and `train --feedback` read them.
"""

from __future__ import annotations

from aiohttp import web

from bot.console.auth import flash
from bot.console.pages import Action, Page
from bot.console.site import Console, redirect, render
from bot.store.review import DEFAULT_MARGIN, LabelError

# There are no console accounts (one password, one role): every label is the console's.
LABELLED_BY = "the web console"
NEAR_DAYS = 30
FEEDBACK_DAYS = 90
PER_QUEUE = 50
NO_TOPIC = "no topic"


async def review_page(
    request: web.Request, console: Console, *, error: str | None = None, error_story: int | None = None
) -> web.StreamResponse:
    now = console.now()
    near = await console.review.near_threshold(
        console.thresholds, margin=DEFAULT_MARGIN, days=NEAR_DAYS, limit=PER_QUEUE, now=now
    )
    judged = await console.review.with_feedback(
        console.thresholds, days=FEEDBACK_DAYS, limit=PER_QUEUE, now=now
    )
    return await render(
        request,
        "review.html",
        {
            "title": "Review",
            "queues": (
                (
                    "near",
                    "Near a threshold",
                    f"Stories of the last {NEAR_DAYS} days with a topic score within "
                    f"{DEFAULT_MARGIN:g} of that topic's threshold, closest first.",
                    near,
                ),
                (
                    "feedback",
                    "Chat feedback",
                    f"Stories readers marked “Not relevant” or “Wrong topic” under an alert in the "
                    f"last {FEEDBACK_DAYS} days, latest first.",
                    judged,
                ),
            ),
            "topics": console.topics,
            "has_thresholds": bool(console.thresholds),
            "error": error,
            "error_story": error_story,
            "now": now,
        },
        status=400 if error else 200,
    )


def _chosen_topics(label: list[str], ticked: list[str]) -> list[str] | None:
    """The label a form asks for: a one-click button's ``label`` (topics joined by spaces, empty
    for no topic), else the ticked ``topic`` boxes. None: nothing was chosen."""
    if label:
        return label[0].split()
    return ticked or None


async def label(request: web.Request, console: Console) -> web.StreamResponse:
    try:
        story_id = int(request.match_info["story_id"])
    except ValueError:
        raise web.HTTPNotFound() from None
    form = await request.post()  # the CSRF token was checked before this runs
    topics = _chosen_topics(
        [v for v in form.getall("label", []) if isinstance(v, str)],
        [v for v in form.getall("topic", []) if isinstance(v, str)],
    )
    if topics is None:
        return await review_page(
            request,
            console,
            error="Not labelled: tick at least one topic, or press “No topic”. Nothing was stored.",
            error_story=story_id,
        )
    try:
        stored = await console.review.store_label(
            story_id, topics, user=LABELLED_BY, known_topics=console.topics, now=console.now()
        )
    except LabelError as exc:
        return await review_page(
            request, console, error=f"Not labelled: {exc}. Nothing was stored.", error_story=story_id
        )
    said = ", ".join(stored.topics) if stored.topics else NO_TOPIC
    await flash(request, f"Labelled “{stored.title}”: {said}.")
    raise redirect("/review")


PAGE = Page("/review", "Review", review_page)
ACTIONS = (Action("/review/{story_id}/label", label),)
