"""Load and validate the topic taxonomy (`config/topics.toml`).

The taxonomy is operator-editable, so every mistake must surface at start-up as one clear line that
names the file, the line and the key, and suggests the intended key when a name is misspelt.
`tomllib` reports line numbers only for syntax errors; for semantic errors we find the offending key
in the source text ourselves (see `_KeyLocator`).
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.classify.addresses import ADDRESS_KINDS

__all__ = [
    "ContextSpec",
    "SignalSpec",
    "Taxonomy",
    "TopicSpec",
    "TopicsConfigError",
    "load_taxonomy",
    "parse_taxonomy",
    "pattern_tokens",
]

_TOPIC_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
# A term is words separated by spaces or hyphens; a word may end in `*` (prefix match).
# A size word: a number with letters written around it, "#b" for "7B" or "480B", "a#b" for "A3B"
# (a model's active parameters). Unlike a bare "#", it may start a term.
_SIZE = r"[a-z]*#[a-z]+|[a-z]+#"
_TERM = re.compile(rf"^(?:{_SIZE}|[a-z0-9]+\*?)(?:[ \-](?:{_SIZE}|[a-z0-9]+\*?|#))*$")
_WORD = re.compile(rf"{_SIZE}|[a-z0-9]+\*?|#")
NUMBER = "#"  # a term word that matches any number: "opus #" is Opus 4, Opus 5, Opus 4.1


def size_pattern(word: str) -> re.Pattern[str] | None:
    """The token pattern of a size word ("#b" → 7b, 480b; "a#b" → a3b), None for other words."""
    if word == NUMBER or "#" not in word:
        return None
    before, _, after = word.partition("#")
    return re.compile(rf"{before}[0-9]+{after}")


class TopicsConfigError(ValueError):
    """The taxonomy file is missing, malformed or inconsistent. The message names file, line and key."""


@dataclass(frozen=True, slots=True)
class SignalSpec:
    """A named group of terms that add `weight` to a topic's score when any of them matches."""

    name: str
    weight: float
    terms: tuple[str, ...]
    gated: bool = True  # counts only when one of the topic's contexts is present


@dataclass(frozen=True, slots=True)
class ContextSpec:
    """Terms whose presence says the story is in a domain (e.g. AI) where ambiguous words are safe."""

    name: str
    terms: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    description: str
    threshold: float
    signals: tuple[SignalSpec, ...]
    contexts: tuple[str, ...] = ()
    requires: tuple[tuple[str, ...], ...] = ()  # each inner tuple: at least one of these signals must match
    title_requires: tuple[tuple[str, ...], ...] = ()  # as `requires`, but the match must be in the title
    bare_title: tuple[
        str, ...
    ] = ()  # a title made (almost) only of these signals' terms satisfies `requires`
    bare_only: tuple[str, ...] = ()  # signals (of `bare_title`) that count only in such a title
    negative_weight: float = 0.0
    negative_terms: tuple[str, ...] = ()
    always: tuple[str, ...] = ()  # any of these terms attaches the topic, whatever the scores say
    # named groups of terms: a term of every group attaches the topic, as an `always` term does
    always_together: tuple[tuple[str, tuple[str, ...]], ...] = ()
    never: tuple[str, ...] = ()  # any of these terms removes the topic (wins over `always`)
    # kinds of address (bot.classify.addresses.ADDRESS_KINDS) that attach the topic, as `always` does
    always_addresses: tuple[str, ...] = ()
    # per kind of address: a story from such an address keeps the topic only when one of these
    # terms is in its title or summary (otherwise it is removed, as by a `never` term)
    address_requires: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # the learned model scores the topic only in a story where one of `contexts` is present (it is
    # trained on those stories alone); in any other story the rules decide
    model_requires_context: bool = False


@dataclass(frozen=True, slots=True)
class Taxonomy:
    topics: tuple[TopicSpec, ...]
    contexts: Mapping[str, ContextSpec]
    title_weight: float = 1.5
    scale: float = 3.0  # raw evidence that maps to a score of 1 - 1/e
    unmet_factor: float = 0.3  # multiplier when a topic's `requires` is not satisfied
    source: str = "<string>"
    extras: Mapping[str, Any] = field(default_factory=dict)

    @property
    def topic_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.topics)

    @property
    def model_gates(self) -> dict[str, frozenset[str]]:
        """Topics with `model_requires_context`, each with the contexts one of which a story must
        carry for the learned model to score it: what training and classification both read."""
        return {t.name: frozenset(t.contexts) for t in self.topics if t.model_requires_context}


def pattern_tokens(term: str) -> tuple[tuple[str, bool], ...]:
    """Split a validated term into (word, is_prefix) pairs, the unit the matcher works on."""
    return tuple((w.rstrip("*"), w.endswith("*")) for w in _WORD.findall(term.lower()))


# --------------------------------------------------------------------------------------- locating keys
class _KeyLocator:
    """Finds the 1-based line of a key path such as ("topics", "ip", "signals", "law", "weight").

    Handles `[table]` headers, dotted keys (`a.b = 1`) and inline tables only as far as the
    taxonomy needs: when the exact key cannot be found, the line of its nearest found parent is used,
    so an error always points somewhere useful.
    """

    _HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(?:#.*)?$")
    _ASSIGN = re.compile(r"^\s*([A-Za-z0-9_\-\"'. ]+?)\s*=")

    def __init__(self, text: str) -> None:
        self._lines: dict[tuple[str, ...], int] = {}
        table: tuple[str, ...] = ()
        for lineno, line in enumerate(text.splitlines(), start=1):
            header = self._HEADER.match(line)
            if header:
                table = self._split(header.group(1))
                self._lines.setdefault(table, lineno)
                continue
            assign = self._ASSIGN.match(line)
            if assign:
                path = table + self._split(assign.group(1))
                for depth in range(len(table) + 1, len(path) + 1):
                    self._lines.setdefault(path[:depth], lineno)

    @staticmethod
    def _split(dotted: str) -> tuple[str, ...]:
        return tuple(part.strip().strip("\"'") for part in dotted.split("."))

    def line(self, path: Sequence[str]) -> int | None:
        for depth in range(len(path), 0, -1):
            found = self._lines.get(tuple(path[:depth]))
            if found is not None:
                return found
        return None


class _Validator:
    def __init__(self, text: str, source: str) -> None:
        self._locator = _KeyLocator(text)
        self._source = source

    def fail(self, path: Sequence[str], message: str) -> TopicsConfigError:
        line = self._locator.line(path)
        where = f"{self._source}:{line}" if line is not None else self._source
        key = ".".join(path) if path else "(top level)"
        return TopicsConfigError(f"{where}: {key}: {message}")

    def table(self, value: Any, path: Sequence[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"expected a table, got {_kind(value)}")
        return value

    def check_keys(self, table: Mapping[str, Any], allowed: Sequence[str], path: Sequence[str]) -> None:
        for key in table:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
                hint = f"; did you mean '{close[0]}'?" if close else f"; allowed keys: {', '.join(allowed)}"
                raise self.fail([*path, key], f"unknown key{hint}")

    def number(
        self, value: Any, path: Sequence[str], *, low: float, high: float, open_low: bool = False
    ) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self.fail(path, f"expected a number, got {_kind(value)}")
        number = float(value)
        if number < low or number > high or (open_low and number == low):
            bracket = "(" if open_low else "["
            raise self.fail(path, f"must be in {bracket}{low:g}, {high:g}], got {number:g}")
        return number

    def string(self, value: Any, path: Sequence[str]) -> str:
        if not isinstance(value, str):
            raise self.fail(path, f"expected a string, got {_kind(value)}")
        return value

    def boolean(self, value: Any, path: Sequence[str]) -> bool:
        if not isinstance(value, bool):
            raise self.fail(path, f"expected true or false, got {_kind(value)}")
        return value

    def terms(self, value: Any, path: Sequence[str], *, allow_empty: bool = False) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise self.fail(path, f"expected a list of strings, got {_kind(value)}")
        if not value and not allow_empty:
            raise self.fail(path, "must not be empty")
        out: list[str] = []
        seen: set[str] = set()
        for index, raw in enumerate(value):
            if not isinstance(raw, str):
                raise self.fail(path, f"item {index + 1} must be a string, got {_kind(raw)}")
            term = " ".join(raw.lower().split())
            if not _TERM.match(term):
                raise self.fail(
                    path,
                    f"item {index + 1} {raw!r} is not a valid term: use letters, digits, spaces or hyphens, "
                    "'*' only at the end of a word (prefix match), '#' (any number) after the first word, "
                    "and size words such as '#b' (7b, 480b) or 'a#b' (a3b)",
                )
            if term in seen:
                raise self.fail(path, f"item {index + 1} {raw!r} is listed twice")
            seen.add(term)
            out.append(term)
        return tuple(out)

    def names(self, value: Any, path: Sequence[str]) -> tuple[str, ...]:
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(path, f"expected a string or a list of strings, got {_kind(value)}")
        return tuple(value)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the string {value!r}"
    return f"{type(value).__name__} {value!r}"


_TOP_KEYS = ("version", "defaults", "contexts", "topics")
_DEFAULT_KEYS = ("threshold", "title_weight", "scale", "unmet_factor")
_CONTEXT_KEYS = ("terms", "description")
_TOPIC_KEYS = (
    "description",
    "threshold",
    "contexts",
    "requires",
    "title_requires",
    "bare_title",
    "bare_only",
    "signals",
    "negative",
    "always",
    "always_together",
    "always_addresses",
    "address_requires",
    "model_requires_context",
    "never",
)
_SIGNAL_KEYS = ("weight", "terms", "gated", "description")
# What a configuration error about a kind of address lists as accepted.
_ACCEPTED_KINDS = "; ".join(f"'{kind}' ({meaning})" for kind, meaning in ADDRESS_KINDS.items())
_NEGATIVE_KEYS = ("weight", "terms", "description")


def parse_taxonomy(text: str, source: str = "<string>") -> Taxonomy:
    """Parse and validate taxonomy TOML text; raise `TopicsConfigError` naming line and key."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TopicsConfigError(f"{source}: invalid TOML: {exc}") from None
    v = _Validator(text, source)
    v.check_keys(data, _TOP_KEYS, [])
    if "version" in data and data["version"] != 1:
        raise v.fail(["version"], f"unsupported version {data['version']!r}; this build reads version 1")

    defaults = v.table(data.get("defaults", {}), ["defaults"])
    v.check_keys(defaults, _DEFAULT_KEYS, ["defaults"])
    default_threshold = v.number(
        defaults.get("threshold", 0.5), ["defaults", "threshold"], low=0, high=1, open_low=True
    )
    title_weight = v.number(
        defaults.get("title_weight", 1.5), ["defaults", "title_weight"], low=0, high=10, open_low=True
    )
    scale = v.number(defaults.get("scale", 3.0), ["defaults", "scale"], low=0, high=100, open_low=True)
    unmet = v.number(defaults.get("unmet_factor", 0.3), ["defaults", "unmet_factor"], low=0, high=1)

    contexts: dict[str, ContextSpec] = {}
    raw_contexts = v.table(data.get("contexts", {}), ["contexts"])
    for name, raw in raw_contexts.items():
        path = ["contexts", name]
        if not _TOPIC_NAME.match(name):
            raise v.fail(path, "context names use lower-case letters, digits, '-' or '_'")
        table = v.table(raw, path)
        v.check_keys(table, _CONTEXT_KEYS, path)
        if "terms" not in table:
            raise v.fail(path, "missing required key 'terms'")
        contexts[name] = ContextSpec(name, v.terms(table["terms"], [*path, "terms"]))

    raw_topics = v.table(data.get("topics"), ["topics"]) if "topics" in data else None
    if not raw_topics:
        raise v.fail(["topics"], "define at least one topic, e.g. [topics.release]")
    topics: list[TopicSpec] = []
    for name, raw in raw_topics.items():
        path = ["topics", name]
        if not _TOPIC_NAME.match(name):
            raise v.fail(
                path, "topic names are 1-32 lower-case letters, digits, '-' or '_', starting with a letter"
            )
        topics.append(_parse_topic(v, name, v.table(raw, path), contexts, default_threshold))

    return Taxonomy(
        topics=tuple(topics),
        contexts=contexts,
        title_weight=title_weight,
        scale=scale,
        unmet_factor=unmet,
        source=source,
    )


def _parse_topic(
    v: _Validator,
    name: str,
    table: dict[str, Any],
    contexts: Mapping[str, ContextSpec],
    default_threshold: float,
) -> TopicSpec:
    path = ["topics", name]
    v.check_keys(table, _TOPIC_KEYS, path)
    description = v.string(table.get("description", ""), [*path, "description"])
    threshold = v.number(
        table.get("threshold", default_threshold), [*path, "threshold"], low=0, high=1, open_low=True
    )

    topic_contexts = v.names(table.get("contexts", []), [*path, "contexts"])
    for ctx in topic_contexts:
        if ctx not in contexts:
            close = difflib.get_close_matches(ctx, list(contexts), n=1)
            hint = (
                f"; did you mean '{close[0]}'?"
                if close
                else f"; defined contexts: {', '.join(contexts) or 'none'}"
            )
            raise v.fail([*path, "contexts"], f"unknown context '{ctx}'{hint}")

    raw_signals = v.table(table.get("signals"), [*path, "signals"]) if "signals" in table else None
    if not raw_signals:
        raise v.fail(
            [*path, "signals"], f"topic '{name}' needs at least one signal, e.g. [topics.{name}.signals.core]"
        )
    signals: list[SignalSpec] = []
    for sig_name, raw_sig in raw_signals.items():
        sig_path = [*path, "signals", sig_name]
        sig = v.table(raw_sig, sig_path)
        v.check_keys(sig, _SIGNAL_KEYS, sig_path)
        if "terms" not in sig:
            raise v.fail(sig_path, "missing required key 'terms'")
        if "weight" not in sig:
            raise v.fail(sig_path, "missing required key 'weight'")
        weight = v.number(sig["weight"], [*sig_path, "weight"], low=-100, high=100)
        if weight == 0:
            raise v.fail([*sig_path, "weight"], "must not be 0 (positive adds evidence, negative subtracts)")
        gated = v.boolean(sig.get("gated", True), [*sig_path, "gated"])
        if gated and not topic_contexts and "gated" in sig:
            raise v.fail([*sig_path, "gated"], "gated = true needs the topic to name 'contexts'")
        signals.append(
            SignalSpec(
                sig_name, weight, v.terms(sig["terms"], [*sig_path, "terms"]), gated and bool(topic_contexts)
            )
        )

    signal_names = [s.name for s in signals if s.weight > 0]
    requires = _parse_requires(v, table, "requires", path, signal_names)
    title_requires = _parse_requires(v, table, "title_requires", path, signal_names)
    bare_title = v.names(table.get("bare_title", []), [*path, "bare_title"])
    for sig_name in bare_title:
        if sig_name not in signal_names:
            close = difflib.get_close_matches(sig_name, signal_names, n=1)
            hint = (
                f"; did you mean '{close[0]}'?"
                if close
                else f"; signals of this topic: {', '.join(signal_names)}"
            )
            raise v.fail([*path, "bare_title"], f"unknown signal '{sig_name}'{hint}")

    bare_only = v.names(table.get("bare_only", []), [*path, "bare_only"])
    for sig_name in bare_only:
        if sig_name not in bare_title:
            raise v.fail(
                [*path, "bare_only"],
                f"'{sig_name}' must also be in bare_title (bare_only signals count only in a bare title)",
            )

    negative_weight = 0.0
    negative_terms: tuple[str, ...] = ()
    if "negative" in table:
        neg_path = [*path, "negative"]
        neg = v.table(table["negative"], neg_path)
        v.check_keys(neg, _NEGATIVE_KEYS, neg_path)
        if "terms" not in neg:
            raise v.fail(neg_path, "missing required key 'terms'")
        negative_weight = v.number(neg.get("weight", 3.0), [*neg_path, "weight"], low=0, high=100)
        negative_terms = v.terms(neg["terms"], [*neg_path, "terms"], allow_empty=True)

    always = v.terms(table.get("always", []), [*path, "always"], allow_empty=True)
    never = v.terms(table.get("never", []), [*path, "never"], allow_empty=True)
    always_together: list[tuple[str, tuple[str, ...]]] = []
    if "always_together" in table:
        together_path = [*path, "always_together"]
        groups = v.table(table["always_together"], together_path)
        for group, terms in groups.items():
            always_together.append((group, v.terms(terms, [*together_path, group])))
        if len(always_together) < 2:
            raise v.fail(
                together_path, "needs at least two named lists of terms (one term of each must match)"
            )
    always_addresses = v.names(table.get("always_addresses", []), [*path, "always_addresses"])
    if len(set(always_addresses)) != len(always_addresses):
        raise v.fail([*path, "always_addresses"], "a kind of address is listed twice")
    for kind in always_addresses:
        if kind not in ADDRESS_KINDS:
            raise v.fail(
                [*path, "always_addresses"], f"unknown kind of address '{kind}'; accepted: {_ACCEPTED_KINDS}"
            )

    address_requires: list[tuple[str, tuple[str, ...]]] = []
    if "address_requires" in table:
        req_path = [*path, "address_requires"]
        for kind, terms in v.table(table["address_requires"], req_path).items():
            if kind not in ADDRESS_KINDS:
                raise v.fail([*req_path, kind], f"unknown kind of address; accepted: {_ACCEPTED_KINDS}")
            address_requires.append((kind, v.terms(terms, [*req_path, kind])))

    model_requires_context = v.boolean(
        table.get("model_requires_context", False), [*path, "model_requires_context"]
    )
    if model_requires_context and not topic_contexts:
        raise v.fail(
            [*path, "model_requires_context"],
            "model_requires_context = true needs the topic to name 'contexts'",
        )

    return TopicSpec(
        model_requires_context=model_requires_context,
        always=always,
        always_together=tuple(always_together),
        never=never,
        always_addresses=always_addresses,
        address_requires=tuple(address_requires),
        name=name,
        description=description,
        threshold=threshold,
        signals=tuple(signals),
        contexts=topic_contexts,
        requires=requires,
        title_requires=title_requires,
        bare_title=bare_title,
        bare_only=bare_only,
        negative_weight=negative_weight,
        negative_terms=negative_terms,
    )


def _parse_requires(
    v: _Validator, table: Mapping[str, Any], key: str, path: Sequence[str], signal_names: Sequence[str]
) -> tuple[tuple[str, ...], ...]:
    raw = table.get(key, [])
    if not isinstance(raw, list):
        raise v.fail([*path, key], f"expected a list of signal-name lists, got {_kind(raw)}")
    groups: list[tuple[str, ...]] = []
    for index, group in enumerate(raw):
        names = v.names(group, [*path, key])
        for name in names:
            if name not in signal_names:
                close = difflib.get_close_matches(name, signal_names, n=1)
                hint = (
                    f"; did you mean '{close[0]}'?"
                    if close
                    else f"; signals with a positive weight: {', '.join(signal_names)}"
                )
                raise v.fail([*path, key], f"item {index + 1} names unknown signal '{name}'{hint}")
        groups.append(names)
    return tuple(groups)


def load_taxonomy(path: Path) -> Taxonomy:
    """Read and validate a taxonomy file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TopicsConfigError(f"{path}: file not found (set FW_TOPICS_FILE)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TopicsConfigError(f"{path}: cannot read: {exc}") from None
    return parse_taxonomy(text, str(path))
