"""The `frontierwatch classify` contract: JSON Lines in, one JSON line out per input line.

Input: one object per line with `title` (string), optional `summary` (string or null) and optional
`url` (the story's address: a Hugging Face model repository is a release, see `always_addresses`;
a paper is one only when it says the model is out, see `address_requires`).
Output: `{"topics": [...], "scores": {topic: score}}` with every topic's score rounded to 4 places;
with `explain=True` also `"evidence": {topic: [terms, ...]}`. A line that cannot be classified gives
`{"error": "line N: ..."}` and processing continues; blank lines are skipped and produce nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from bot.classify import Classifier, classify_many

__all__ = ["classify_lines", "classify_record", "describe_json_error"]


class _BadLine(ValueError):
    pass


def describe_json_error(line: str, exc: json.JSONDecodeError) -> str:
    """Why a line is not JSON, with a column that points into the line.

    ``exc`` comes from ``json.loads(line)`` on the line without its newline. A line cut short (a
    truncated file, a copy that lost its end) fails at its very end; "column 1" of the next line,
    which the decoder reports when it is given the newline, sends the user to the wrong place.
    """
    if exc.pos >= len(line.rstrip()):
        return f"invalid JSON: the line ends early, at column {len(line) + 1} (truncated?): {exc.msg}"
    return f"invalid JSON: {exc.msg} (column {exc.colno})"


def classify_record(classifier: Classifier, record: object, *, explain: bool) -> dict[str, object]:
    if not isinstance(record, dict):
        raise _BadLine("expected a JSON object")
    title = record.get("title")
    if not isinstance(title, str):
        raise _BadLine("missing 'title'" if title is None else "'title' must be a string")
    summary = record.get("summary")
    if summary is None:
        summary = ""
    elif not isinstance(summary, str):
        raise _BadLine("'summary' must be a string")
    url = record.get("url")
    if url is not None and not isinstance(url, str):
        raise _BadLine("'url' must be a string")
    result = classify_many(classifier, [(title, summary, url)])[0]
    out: dict[str, object] = {
        "topics": list(result.topics),
        "scores": {topic: round(result.scores.get(topic, 0.0), 4) for topic in classifier.topics},
    }
    if explain:
        out["evidence"] = {topic: list(result.evidence.get(topic, ())) for topic in classifier.topics}
    return out


def classify_lines(classifier: Classifier, lines: Iterable[str], *, explain: bool) -> Iterator[str]:
    """Yield one JSON line (without newline) per non-blank input line."""
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        line = line.rstrip("\r\n")
        try:
            record = json.loads(line)
            out = classify_record(classifier, record, explain=explain)
        except json.JSONDecodeError as exc:
            yield json.dumps({"error": f"line {lineno}: {describe_json_error(line, exc)}"})
            continue
        except _BadLine as exc:
            yield json.dumps({"error": f"line {lineno}: {exc}"})
            continue
        except Exception as exc:  # one bad story must never lose the rest of the stream
            yield json.dumps({"error": f"line {lineno}: {type(exc).__name__}: {exc}"})
            continue
        yield json.dumps(out, ensure_ascii=False)
