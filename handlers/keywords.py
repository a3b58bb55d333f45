"""`/watch keywords add|remove|list`: a channel's own include/exclude words on top of its topics.

`add nvidia "export controls" -whisky` adds two include keywords and one exclude keyword: a leading
`-` excludes. Matching rules are `bot.classify.KeywordFilter`'s (whole words, case-insensitive).
"""

from __future__ import annotations

from bot.classify import KeywordFilter
from handlers.context import HandlerDeps, channel_key
from handlers.model import Command, Reply, UsageError, done, info

MAX_KEYWORD_CHARS = 100
USAGE = (
    '`/watch keywords add <words>` — e.g. `keywords add nvidia "export controls" -whisky` '
    "(a leading `-` excludes stories with that word)",
    "`/watch keywords remove <words>`",
    "`/watch keywords list`",
)


def _split(text: str) -> list[str]:
    try:
        words = KeywordFilter.parse(text)
    except ValueError as exc:
        raise UsageError(f"Could not read the keywords: {exc}.", *USAGE[:2]) from None
    if not words:
        raise UsageError("Which keywords?", *USAGE[:2])
    for word in words:
        if len(word) > MAX_KEYWORD_CHARS:
            raise UsageError(f"A keyword can have at most {MAX_KEYWORD_CHARS} characters.", *USAGE[:1])
    return words


def _kinds(words: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for word in words:
        if word.startswith("-"):
            bare = " ".join(word[1:].split())
            if not bare:
                raise UsageError("A lone `-` is not a keyword.", *USAGE[:1])
            pairs.append(("exclude", bare))
        else:
            pairs.append(("include", word))
    return pairs


def _show(kind: str, word: str) -> str:
    return f"`-{word}`" if kind == "exclude" else f"`{word}`"


async def add(deps: HandlerDeps, command: Command) -> Reply:
    pairs = _kinds(_split(command.invocation.rest))
    try:
        added, already = await deps.store.add_keywords(
            channel_key(command), pairs, limit=deps.max_keywords_per_channel
        )
    except ValueError as exc:
        raise UsageError(
            f"Nothing was added: {exc}.", "Remove some with `/watch keywords remove <words>`."
        ) from None
    if not added:
        return info("Those keywords were already set: " + ", ".join(_show(k, w) for k, w in already) + ".")
    lines = ["Stories must contain an include keyword and no exclude keyword to be posted here."]
    if already:
        lines.append("Already set: " + ", ".join(_show(k, w) for k, w in already) + ".")
    return done("Keywords added: " + ", ".join(_show(k, w) for k, w in added) + ".", *lines)


async def remove(deps: HandlerDeps, command: Command) -> Reply:
    words = [w[1:] if w.startswith("-") and len(w) > 1 else w for w in _split(command.invocation.rest)]
    removed, missing = await deps.store.remove_keywords(channel_key(command), words)
    if not removed:
        state = await deps.store.channel_state(channel_key(command))
        current = [f"`{w}`" for w in state.include] + [f"`-{w}`" for w in state.exclude]
        raise UsageError(
            "None of those keywords is set for this channel.",
            "Current keywords: " + (", ".join(current) or "none") + ".",
        )
    lines = ["Not found: " + ", ".join(f"`{w}`" for w in missing) + "."] if missing else []
    return done("Keywords removed: " + ", ".join(f"`{w}`" for w in removed) + ".", *lines)


async def list_keywords(deps: HandlerDeps, command: Command) -> Reply:
    state = await deps.store.channel_state(channel_key(command))
    if not state.include and not state.exclude:
        return info("This channel has no keywords: every story on its topics is posted.", *USAGE[:1])
    lines = []
    if state.include:
        lines.append("Include (a story needs one of these): " + ", ".join(f"`{w}`" for w in state.include))
    if state.exclude:
        lines.append(
            "Exclude (a story with any of these is skipped): " + ", ".join(f"`{w}`" for w in state.exclude)
        )
    return info("Keywords", *lines)
