"""What the pydantic models of the TOML files (``sources.toml``, ``webhooks.toml``) share: the strict
table base, the validators' own errors, the http(s) URL check and the pieces of the one-line message
each file's reader builds from pydantic's errors."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection
from typing import Any

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, TypeAdapter, ValidationError
from pydantic_core import PydanticCustomError

__all__ = ["CUSTOM", "HTTP_URL", "StrictTable", "as_written", "check_http_url", "did_you_mean", "refuse"]

CUSTOM = "frontierwatch"  # error type of the validators' own, already readable, messages
HTTP_URL: TypeAdapter[AnyHttpUrl] = TypeAdapter(AnyHttpUrl)


class StrictTable(BaseModel):
    # strict: TOML already has types, so "30" for a number or 1 for a boolean is a mistake, not input
    # to coerce; forbid: a misspelled key must be an error, not a silently ignored default.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def refuse(message: str) -> PydanticCustomError:
    # The message goes through the context: a template would treat braces in it as placeholders.
    return PydanticCustomError(CUSTOM, "{message}", {"message": message})


def check_http_url(url: str, accepts: str, white_space: str) -> str:
    """Refuse what is not an absolute http(s) URL (``accepts`` says what is; ``white_space`` is
    the message for a URL with a space); return ``url`` unchanged, as written."""
    if not url.lower().startswith(("http://", "https://")):
        raise refuse(accepts)
    # Checked before parsing because the URL parser would quietly percent-encode the space.
    if any(ch.isspace() for ch in url):
        raise refuse(white_space)
    try:
        HTTP_URL.validate_python(url)
    except ValidationError as exc:
        reason = exc.errors()[0]["msg"].removeprefix("Input should be a valid URL, ")
        raise refuse(f"{accepts} ({reason})") from None
    return url


def did_you_mean(unknown: list[str], known: Collection[str], quote: Callable[[str], str] = repr) -> str:
    """`` (did you mean 'interval_minutes' for 'intervall'?)`` for the unknown keys close to a known one."""
    guesses = [
        f"{quote(match[0])} for {key!r}"
        for key in unknown
        if (match := difflib.get_close_matches(key, sorted(known), n=1))
    ]
    return f" (did you mean {', '.join(guesses)}?)" if guesses else ""


def as_written(value: Any) -> str:
    """A value as TOML spells it, since that is what the user wrote; long ones cut."""
    text = ("true" if value else "false") if isinstance(value, bool) else repr(value)
    return f"{text[:80]}…" if len(text) > 80 else text
