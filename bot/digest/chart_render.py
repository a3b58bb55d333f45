"""The weekly digest's trend chart, as each platform gets it (pure: payload in, body out).

- Discord: one embed whose image is the attached PNG (``attachment://trends.png``); the sender
  posts it as multipart/form-data (``payload_json`` + ``files[0]``).
- Slack: the PNG to upload (``files.getUploadURLExternal`` → upload → ``completeUploadExternal``
  shared in the channel), with the alt text as its introducing comment.
- Console: a small table of the same numbers; a terminal shows no image, and the bot writes no
  files on its own (``frontierwatch trends --chart FILE`` writes the PNG when asked).
"""

from __future__ import annotations

from typing import Any

from bot.digest.common import DigestHeader, clip
from bot.store.trends import TopicSeries
from bot.trends.chart import CHART_FILENAME, ChartFile, chart_alt_text, render_chart_png

CHART_COLOR = 0x0072B2


def chart_file(payload: dict[str, Any], ref: str | None = None) -> ChartFile:
    """The PNG and its texts. ``ref``: the delivery's marker, put at the end of the file title on
    Slack so that an upload whose answer was lost can be found in the channel's history."""
    series = TopicSeries.from_payload(payload["series"])
    title = str(payload.get("title") or "Trends")
    header = DigestHeader.from_dict(payload["header"]) if payload.get("header") else None
    dated = f"{title} — {header.date_label}" if header is not None else title
    file_title = f"{dated} · {ref}" if ref else dated
    return ChartFile(
        filename=CHART_FILENAME,
        data=render_chart_png(series, dated),
        title=clip(file_title, 250),
        alt_text=clip(chart_alt_text(series, dated), 1000),
    )


def discord_chart_body(payload: dict[str, Any]) -> dict[str, Any]:
    chart = chart_file(payload)
    return {
        "embeds": [
            {
                "title": clip(chart.title, 256),
                "description": clip(chart.alt_text, 4096),
                "color": CHART_COLOR,
                "image": {"url": f"attachment://{chart.filename}"},
            }
        ],
        "allowed_mentions": {"parse": []},
        "files": [chart],
    }


def slack_chart_body(payload: dict[str, Any], ref: str | None = None) -> dict[str, Any]:
    chart = chart_file(payload, ref)
    return {"text": clip(chart.alt_text, 3000), "upload": chart}


def text_chart(payload: dict[str, Any]) -> str:
    series = TopicSeries.from_payload(payload["series"])
    title = str(payload.get("title") or "Trends")
    width = max([len(t) for t in series.topics] + [5])
    lines = [title, f"{'week of':<{width}}  " + " ".join(f"{d:%m-%d}" for d in series.starts)]
    for topic in series.topics:
        cells = " ".join(f"{n:>5}" for n in series.counts[topic])
        lines.append(f"{topic:<{width}}  {cells}   total {series.total(topic)}")
    return "\n".join(lines) + "\n"
