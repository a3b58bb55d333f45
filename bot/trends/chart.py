"""The trend chart as a PNG: events per topic per bucket, one line per topic.

Rendered with matplotlib's Agg canvas on a ``Figure`` of our own (never ``pyplot``: no display,
no global figure registry, safe in a worker thread). The output is deterministic: fixed size and
DPI, fixed colours by topic position, and no ``Software`` or date chunk in the PNG metadata, so the
same series gives the same bytes (tests compare them) and only new data changes the image.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from bot.store.trends import TopicSeries

__all__ = [
    "CHART_DPI",
    "CHART_FILENAME",
    "CHART_HEIGHT_PX",
    "CHART_WIDTH_PX",
    "chart_alt_text",
    "render_chart_png",
]

CHART_FILENAME = "trends.png"
CHART_DPI = 100
CHART_WIDTH_PX, CHART_HEIGHT_PX = 1000, 500
# Colour-blind-safe (Okabe–Ito), in topic order, so a topic keeps its colour from week to week.
COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def _tick_labels(series: TopicSeries) -> list[str]:
    return [f"{d:%b} {d.day}" for d in series.starts]


# Charts are drawn in worker threads (the delivery worker, the console) and matplotlib's shared
# state (font cache, rcParams) is not documented as thread-safe: one chart at a time.
_DRAWING = threading.Lock()


def render_chart_png(series: TopicSeries, title: str, topic_labels: Sequence[str] | None = None) -> bytes:
    """The chart of ``series`` as PNG bytes, ``CHART_WIDTH_PX`` × ``CHART_HEIGHT_PX``.

    ``topic_labels``: legend names for the series' topics, in order (default: the topic names).
    Thread-safe (serialised); call it from a thread, not the event loop."""
    with _DRAWING:
        return _render(series, title, topic_labels)


def _render(series: TopicSeries, title: str, topic_labels: Sequence[str] | None) -> bytes:
    # Imported here: matplotlib takes a few hundred milliseconds to load, and only a weekly
    # chart (or `trends --chart`) needs it, not every process that imports the delivery code.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(CHART_WIDTH_PX / CHART_DPI, CHART_HEIGHT_PX / CHART_DPI), dpi=CHART_DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    labels = list(topic_labels or series.topics)
    positions = list(range(len(series.starts)))
    for i, topic in enumerate(series.topics):
        axes.plot(
            positions,
            series.counts[topic],
            color=COLOURS[i % len(COLOURS)],
            marker=MARKERS[i % len(MARKERS)],
            linewidth=2,
            markersize=4,
            label=f"{labels[i] if i < len(labels) else topic} ({series.total(topic)})",
        )
    axes.set_title(title, fontsize=13, loc="left")
    per = "week" if series.bucket == "week" else "day"
    axes.set_ylabel(f"events per {per}")
    ticks = _tick_labels(series)
    step = max(1, len(ticks) // 12)  # at most a dozen date labels, whatever the length
    axes.set_xticks(positions[::step], ticks[::step], rotation=0, fontsize=8)
    peak = max((max(values, default=0) for values in series.counts.values()), default=0)
    axes.set_ylim(0, max(1, peak) * 1.25)  # headroom: the legend sits above the lines
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))  # events are whole numbers
    axes.grid(axis="y", alpha=0.3)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    if series.topics:
        axes.legend(loc="upper left", fontsize=9, frameon=False, ncols=min(4, len(series.topics)))
    if not any(series.total(t) for t in series.topics):
        axes.text(0.5, 0.5, "no stories in this period", transform=axes.transAxes, ha="center", color="#666")
    figure.tight_layout()
    buffer = io.BytesIO()
    # metadata: no "Software" (the matplotlib version) so the bytes depend on the data alone.
    figure.savefig(buffer, format="png", dpi=CHART_DPI, metadata={"Software": None})
    return buffer.getvalue()


def chart_alt_text(series: TopicSeries, title: str) -> str:
    """What the chart says, for screen readers and the console."""
    if not series.starts:
        return title
    first, last = series.starts[0], series.starts[-1]
    totals = ", ".join(f"{t} {series.total(t)}" for t in series.topics) or "no topics"
    return f"{title}: events per {series.bucket} from {first:%b} {first.day} to {last:%b} {last.day}; totals {totals}"


@dataclass(frozen=True, slots=True)
class ChartFile:
    """A rendered chart, as the senders attach or upload it."""

    filename: str
    data: bytes
    title: str
    alt_text: str
