"""What a story's address alone says about it: the kinds of page `always_addresses` can name.

A headline such as "facebook/cwm" or "Lightricks/LTX-2" carries no word a classifier can learn
from, but its address does: a page ``huggingface.co/<owner>/<name>`` is a model repository, and the
labelling guide counts "a model card or Hub repository of a new model" as a release. Aggregators
(trending lists, Hacker News) link such pages with nothing but the repository id as headline.

A paper's page says the opposite: the guide counts a paper as a release only when it "introduces a
named model and publishes it", and most papers that name a model never say so. A topic's
``address_requires`` gives, per kind of address, the words a story from such an address must
carry for the topic to attach (``paper = ["open source", "weights", …]`` on ``release``).

Only the address's shape is read: no network, no lookup. Kinds are named in
``config/topics.toml`` (``always_addresses = ["hub_model"]``, ``[topics.X.address_requires]``), so
an operator decides what, if anything, an address does.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["ADDRESS_KINDS", "address_kind", "paper_id"]

#: Every kind of address a topic's ``always_addresses`` and ``address_requires`` may name, with
#: what it means (shown in configuration errors and in the docs).
ADDRESS_KINDS: dict[str, str] = {
    "hub_model": "a model repository on the Hugging Face Hub, https://huggingface.co/<owner>/<name>",
    "paper": "a paper on arXiv (https://arxiv.org/abs/<id>, /pdf/, /html/) or its Hugging Face page (/papers/<id>)",
}

_ARXIV_HOSTS = frozenset({"arxiv.org", "www.arxiv.org", "export.arxiv.org"})
_ARXIV_SECTIONS = frozenset({"abs", "pdf", "html"})
# A new-style arXiv id (2511.01234, with an optional version) or an old-style one (cs/0112017).
_ARXIV_ID = re.compile(r"(\d{4}\.\d{4,5}|[a-z-]+(\.[A-Z]{2})?/\d{7})(v\d+)?(\.pdf)?", re.IGNORECASE)

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


def _web_path(url: str | None, *marks: str) -> tuple[str, list[str]] | None:
    """The host (lower case, no trailing dot) and path segments of an http(s) ``url`` that contains
    one of ``marks``; ``None`` for any other, and cheaply for most stories (no parse)."""
    if not url:
        return None
    lowered = url.lower()
    if not any(mark in lowered for mark in marks):
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https"):
        return None
    return (parts.hostname or "").rstrip("."), [s for s in parts.path.split("/") if s]


def hub_model_repository(url: str | None) -> str | None:
    """``owner/name`` when ``url`` is a page of a model repository on the Hub, else ``None``.

    Files and tabs of the repository (``/blob/main/README.md``, ``/tree/main``, ``/discussions``)
    are still that repository's pages.
    """
    found = _web_path(url, "huggingface.co", "hf.co")
    if found is None:
        return None
    host, segments = found
    if host not in _HUB_HOSTS or len(segments) < 2:
        return None
    owner, name = segments[0], segments[1].removesuffix(".git")
    if owner.lower() in _HUB_RESERVED or not _HUB_NAME.fullmatch(owner) or not _HUB_NAME.fullmatch(name):
        return None
    return f"{owner}/{name}"


def paper_id(url: str | None) -> str | None:
    """The arXiv id when ``url`` is a paper's page on arXiv or on the Hub (``/papers/<id>``)."""
    found = _web_path(url, "arxiv.org", "/papers/")
    if found is None:
        return None
    host, segments = found
    if host in _ARXIV_HOSTS and len(segments) >= 2 and segments[0].lower() in _ARXIV_SECTIONS:
        candidate = "/".join(segments[1:])
    elif host in _HUB_HOSTS and len(segments) == 2 and segments[0] == "papers":
        candidate = segments[1]
    else:
        return None
    arxiv = _ARXIV_ID.fullmatch(candidate)
    return arxiv.group(1) if arxiv else None


def address_kind(url: str | None) -> tuple[str, str] | None:
    """The kind of ``url`` (a key of :data:`ADDRESS_KINDS`) and a short reason to show, or ``None``."""
    repository = hub_model_repository(url)
    if repository is not None:
        return "hub_model", f"Hugging Face model repository {repository}"
    paper = paper_id(url)
    if paper is not None:
        return "paper", f"paper arXiv:{paper}"
    return None
