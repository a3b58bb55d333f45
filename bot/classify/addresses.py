"""What a story's address alone says about it: the kinds of page `always_addresses` can name.

A headline such as "facebook/cwm" or "Lightricks/LTX-2" carries no word a classifier can learn
from, but its address does: a page ``huggingface.co/<owner>/<name>`` is a model repository, and the
labelling guide counts "a model card or Hub repository of a new model" as a release. Aggregators
(trending lists, Hacker News) link such pages with nothing but the repository id as headline.

Only the address's shape is read: no network, no lookup. Kinds are named in
``config/topics.toml`` (``always_addresses = ["hub_model"]`` on a topic), so an operator decides
which topic, if any, an address attaches.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["ADDRESS_KINDS", "address_kind"]

#: Every kind of address a topic's ``always_addresses`` may name, with what it means (shown in
#: configuration errors and in the docs).
ADDRESS_KINDS: dict[str, str] = {
    "hub_model": "a model repository on the Hugging Face Hub, https://huggingface.co/<owner>/<name>",
}

_HUB_HOSTS = frozenset({"huggingface.co", "www.huggingface.co", "hf.co"})

# First path segments of huggingface.co that are the site's own pages, not a user or an
# organisation: datasets and Spaces live under their own prefix, papers and blog posts are not
# repositories, and the rest are the site's sections.
_HUB_RESERVED = frozenset(
    {
        "api", "blog", "chat", "collections", "competitions", "datasets", "docs", "enterprise",
        "inference", "jobs", "join", "learn", "login", "mcp", "models", "new", "notifications",
        "organizations", "papers", "posts", "pricing", "privacy", "search", "settings", "spaces",
        "storage", "subscribe", "tasks", "terms-of-service", "changelog", "huggingchat",
        "inference-endpoints", "welcome", "static-proxy", "oauth",
    }
)  # fmt: skip

# An account or repository name as the Hub allows them: letters, digits, "-", "_", ".".
_HUB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def hub_model_repository(url: str | None) -> str | None:
    """``owner/name`` when ``url`` is a page of a model repository on the Hub, else ``None``.

    Files and tabs of the repository (``/blob/main/README.md``, ``/tree/main``, ``/discussions``)
    are still that repository's pages.
    """
    if not url:
        return None
    lowered = url.lower()
    if "huggingface.co" not in lowered and "hf.co" not in lowered:  # most stories: no parse
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or (parts.hostname or "").rstrip(".") not in _HUB_HOSTS:
        return None
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) < 2:
        return None
    owner, name = segments[0], segments[1].removesuffix(".git")
    if owner.lower() in _HUB_RESERVED or not _HUB_NAME.fullmatch(owner) or not _HUB_NAME.fullmatch(name):
        return None
    return f"{owner}/{name}"


def address_kind(url: str | None) -> tuple[str, str] | None:
    """The kind of ``url`` (a key of :data:`ADDRESS_KINDS`) and a short reason to show, or ``None``."""
    repository = hub_model_repository(url)
    if repository is not None:
        return "hub_model", f"Hugging Face model repository {repository}"
    return None
