"""The ``frontierwatch`` command line (same as ``python -m bot``)."""

from __future__ import annotations

import asyncio
import difflib
import json
import logging
import re
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bot import __version__
from bot.services import ServiceStartError
from bot.settings import Settings, SettingsError, load_settings

T = TypeVar("T")
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)  # an error is one line, never wrapped
_DURATION = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
MAX_DURATION = timedelta(days=3650)  # a window reaching back before year 1 would overflow


def parse_duration(text: str) -> timedelta:
    """'30m', '48h', '7d', '2w' → timedelta."""
    match = _DURATION.match(text)
    if not match:
        raise click.BadParameter(f"{text!r} is not a duration; use a number and m, h, d or w, e.g. 48h")
    value, unit = int(match.group(1)), match.group(2)
    try:
        window = timedelta(**{{"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[unit]: value})
    except OverflowError:
        window = timedelta.max
    if window > MAX_DURATION:
        raise click.BadParameter(
            f"{text!r} is too long; at most {MAX_DURATION.days // 365} years (e.g. 520w)"
        )
    return window


def _settings() -> Settings:
    from bot.settings import misspelled_settings

    for warning in misspelled_settings():
        err.print(f"warning: {warning}", markup=False)
    try:
        return load_settings()
    except SettingsError as exc:
        err.print(f"error: {exc}", markup=False)
        sys.exit(2)


def _logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("apscheduler.executors.default", "apscheduler.scheduler", "alembic.runtime.plugins"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _run(coro: Awaitable[T]) -> T:
    async def main() -> T:
        return await coro

    from sqlalchemy.exc import SQLAlchemyError

    from bot.classify import TopicsConfigError
    from bot.runner import run_to_completion
    from bot.sources.config import SourcesConfigError

    try:
        return run_to_completion(main())
    except (_ConfigProblem, ServiceStartError, SourcesConfigError, TopicsConfigError) as exc:
        err.print(f"error: {exc}", markup=False)
        sys.exit(2)
    except (OSError, SQLAlchemyError) as exc:  # the database is unreachable, refused us, or broke
        from bot.settings import hide_password
        from bot.store.db import explain_database_error

        reason = hide_password(" ".join(str(getattr(exc, "orig", None) or exc).split()))[:300]
        reason = explain_database_error(reason)
        err.print(f"error: database: {type(exc).__name__}: {reason}", markup=False)
        sys.exit(2)


class _ConfigProblem(Exception):
    pass


async def _build_app(settings: Settings, **kwargs: Any) -> Any:
    from bot.app import App
    from bot.classify import TopicsConfigError
    from bot.sources.config import SourcesConfigError

    try:
        return await App.build(settings, **kwargs)
    except (SourcesConfigError, TopicsConfigError) as exc:
        raise _ConfigProblem(str(exc)) from None
    except OSError as exc:
        raise _ConfigProblem(f"database {_safe_url(settings.database_url)}: {exc}") from None


def _safe_url(url: str) -> str:
    """A database URL without its password, for messages."""
    from bot.settings import hide_password

    return hide_password(url)


class _OneLineErrors(click.Group):
    """A wrong argument or option is one line on stderr, ``error: …`` with where to look, exit 2,
    like every other mistake this command line reports (click's default is a usage block)."""

    def main(self, *args: Any, **kwargs: Any) -> Any:  # never returns: exits with the code
        kwargs["standalone_mode"] = False
        try:
            result = super().main(*args, **kwargs)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else "frontierwatch"
            err.print(f"error: {exc.format_message()} (see `{where} --help`)", markup=False, soft_wrap=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            err.print(f"error: {exc.format_message()}", markup=False, soft_wrap=True)
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            err.print("aborted", markup=False)
            sys.exit(1)
        # Without standalone mode click returns ``ctx.exit(code)``'s code instead of exiting.
        sys.exit(result if isinstance(result, int) else 0)


@click.group(cls=_OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="frontierwatch")
def main() -> None:
    """Frontier Watch: watches AI news feeds and model-release trackers for distillation, AI IP fights,
    the national-security side of AI and new model releases, and posts alerts and digests.

    Settings come from FW_* environment variables (see README); chat tokens from DISCORD_TOKEN and
    SLACK_* variables.
    """


# ---------------------------------------------------------------------------------------- run
@main.command()
def run() -> None:
    """Poll all sources on schedule and announce new relevant stories until Ctrl-C.

    With no chat platform configured, new stories are printed to the console. The first poll of a
    new source stores its backlog silently; only later stories are announced.
    """
    settings = _settings()
    _logging(settings.log_level)
    _run(_run_forever(settings))


async def _run_forever(settings: Settings) -> None:
    from bot.scheduler import build_scheduler, run_forever
    from bot.store.retention import Retention

    # New stories reach the console (or chat) through the delivery outbox (issue 5), not a sink here.
    app = await _build_app(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    counts = await app.store.counts()
    err.print(
        f"Frontier Watch {__version__}: {counts['sources']} sources, {counts['stories']} stories stored "
        f"({_safe_url(settings.database_url)}). Alerts and digests go to the configured channels, or print here "
        "when no chat platform is configured. Ctrl-C stops.",
        markup=False,
    )
    await _say_what_run_waits_for(app)
    scheduler = build_scheduler(
        app.poller, settings.poll_tick_seconds, Retention(app.store, settings.retention_days)
    )
    try:
        app.add_services()
        app.add_metrics_listener(lambda: scheduler.running)
        await run_forever(scheduler, stop, app.start_services)
    finally:
        err.print("stopping…", markup=False)
        await app.close()


async def _say_what_run_waits_for(app: Any) -> None:
    """A second start after failures would otherwise be silent for up to the back-off (an hour)."""
    now = datetime.now(UTC)
    enabled = [s for s in await app.store.list_sources() if s.enabled]
    if not enabled:
        return
    waiting = sorted((s.next_poll_at.replace(tzinfo=UTC), s.name) for s in enabled)
    if waiting[0][0] <= now + timedelta(minutes=1):
        return
    backing_off = sum(1 for s in enabled if s.failure_count)
    err.print(
        f"Nothing is due yet: the next poll is {waiting[0][1]!r} at {waiting[0][0]:%H:%M} UTC"
        + (f" ({backing_off} sources are backing off after failures)" if backing_off else "")
        + ". `frontierwatch poll --once --all` polls every source now.",
        markup=False,
    )


# ---------------------------------------------------------------------------------------- poll
@main.command()
@click.option("--once", is_flag=True, help="Run one cycle over all due sources, print a table, exit.")
@click.option(
    "--all", "poll_all", is_flag=True, help="With --once: poll every enabled source now, due or not."
)
@click.option(
    "--source", "source_names", multiple=True, metavar="NAME", help="With --once: poll this source now."
)
def poll(once: bool, poll_all: bool, source_names: tuple[str, ...]) -> None:
    """Poll due sources: once with --once (progress bar, then a table), else like `run`.

    Exits 1 when every source polled failed (no network?), 0 otherwise."""
    settings = _settings()
    if (poll_all or source_names) and not once:
        err.print("error: --all and --source go with --once", markup=False)
        sys.exit(2)
    if not once:
        _logging(settings.log_level)
        _run(_run_forever(settings))
        return
    _logging("WARNING")
    report = _run(_poll_once(settings, poll_all=poll_all, names=source_names))
    if report is None:
        sys.exit(1)
    failed = report.count("failed")
    sys.exit(1 if report.outcomes and failed == len(report.outcomes) else 0)


async def _poll_once(settings: Settings, *, poll_all: bool = False, names: tuple[str, ...] = ()) -> Any:
    app = await _build_app(settings)
    try:
        if poll_all or names:
            sources = {s.name: s for s in await app.store.list_sources() if s.enabled}
            unknown = [n for n in names if n not in sources]
            if unknown:
                folded = {name.casefold(): name for name in sources}
                close = difflib.get_close_matches(unknown[0].casefold(), list(folded), n=1)
                hint = (
                    f"; did you mean {folded[close[0]]!r}?" if close else "; see `frontierwatch sources list`"
                )
                raise _ConfigProblem(f"no enabled source named {unknown[0]!r}{hint}")
            wanted = list(sources.values()) if poll_all else [sources[n] for n in names]
            now = datetime.now(UTC)
            await app.store.save_fetch_states([{"id": s.id, "next_poll_at": now} for s in wanted])
        with Progress(
            TextColumn("polling"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=err,
            transient=True,
        ) as progress:
            task = progress.add_task("", total=None)

            def claimed(n: int) -> None:
                progress.update(task, total=n)

            def step(outcome: Any) -> None:
                progress.update(task, advance=1, description=outcome.name[:40])

            report = await app.poller.poll_due(on_claimed=claimed, on_progress=step)
        upcoming = sorted((s.next_poll_at, s.name) for s in await app.store.list_sources() if s.enabled)
    finally:
        await app.close()
    _print_poll_table(report, upcoming[0] if upcoming else None)
    return report


def _print_poll_table(report: Any, next_due: tuple[datetime, str] | None = None) -> None:
    if not report.outcomes:
        if next_due is None:
            out.print("No source is enabled: add [[sources]] to the sources file.", markup=False)
            return
        when, name = next_due
        out.print(
            f"No source is due. The next poll is {name!r} at {when:%Y-%m-%d %H:%M} UTC (sources wait "
            "their interval, and longer after failures); `frontierwatch poll --once --all` polls every "
            "source now.",
            markup=False,
        )
        return
    table = Table(title="poll results", title_justify="left")
    for column in ("source", "result", "new", "entries", "HTTP", "why"):
        table.add_column(column, overflow="fold")
    for o in report.outcomes:
        result = o.status + (
            " (first poll: backlog stored quietly)" if o.backlog and o.status == "new" else ""
        )
        table.add_row(o.name, result, str(o.new), str(o.entries), str(o.http_status or "-"), o.error or "")
    out.print(table)
    seconds = ((report.finished or report.started) - report.started).total_seconds()
    out.print(
        f"{len(report.outcomes)} sources: {report.count('new')} new, {report.count('unchanged')} unchanged, "
        f"{report.count('failed')} failed; {report.stored} new stories in {seconds:.1f}s",
        markup=False,
    )
    failed = [o for o in report.outcomes if o.status == "failed"]
    if failed and len(failed) == len(report.outcomes):
        offline = sum("DNS" in (o.error or "") or "connect" in (o.error or "").lower() for o in failed)
        hint = " — no network?" if offline >= len(failed) / 2 else ""
        err.print(
            f"every source failed{hint} (they are retried with back-off; see `sources list`)", markup=False
        )


# ---------------------------------------------------------------------------------------- stories
@main.command()
@click.option("--topic", "topic", metavar="T", help="Only stories labelled with this topic.")
@click.option(
    "--since", "since", default="48h", show_default=True, metavar="DURATION", help="e.g. 30m, 48h, 7d."
)
@click.option("--all", "show_all", is_flag=True, help="Include stories no topic matched.")
@click.option("--limit", default=200, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
def stories(topic: str | None, since: str, show_all: bool, limit: int, as_json: bool) -> None:
    """List stored stories, newest first."""
    settings = _settings()
    window = parse_duration(since)
    _logging("WARNING")
    rows = _run(_stories(settings, topic, window, show_all, limit))
    if as_json:
        out.print_json(json.dumps([_story_json(r) for r in rows]), indent=2)
        return
    if not rows:
        out.print("No stories match.")
        return
    table = Table()
    for column in ("published (UTC)", "topics", "title", "outlets"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(
            r.published_at.strftime("%Y-%m-%d %H:%M"),
            ", ".join(f"{t} {s:.2f}" for t, s in r.topics.items()),
            f"{r.title}\n{r.url}",
            ", ".join(r.outlets),
        )
    out.print(table)


async def _stories(
    settings: Settings, topic: str | None, window: timedelta, show_all: bool, limit: int
) -> Any:
    from bot.classify import load_classifier
    from bot.store.db import create_engine, migrate
    from bot.store.repo import Store

    try:
        known = load_classifier(settings.topics_file, "off").topics
    except Exception as exc:
        raise _ConfigProblem(str(exc)) from None
    if topic is not None and topic not in known:
        raise _ConfigProblem(f"unknown topic {topic!r}; known topics: {', '.join(known)}")
    engine = create_engine(settings.database_url)
    try:
        await migrate(engine)
        store = Store(engine)
        return await store.list_stories(
            topic=topic, since=datetime.now(UTC) - window, limit=limit, relevant_only=not show_all
        )
    finally:
        await engine.dispose()


@main.command()
@click.argument("query", nargs=-1, required=True)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
def search(query: tuple[str, ...], limit: int, as_json: bool) -> None:
    """Search stored stories: whole words (all must appear), "quoted phrases", topic:NAME,
    since:7d / since:2026-11-01. Best match first.

    Quote a phrase for the shell too: frontierwatch search '"export controls"' since:2w
    """
    from bot.store.search import SearchSyntaxError, parse_search

    settings = _settings()
    _logging("WARNING")
    try:
        from bot.classify import load_classifier

        topics = load_classifier(settings.topics_file, "off").topics
    except Exception as exc:
        raise _ConfigProblem(str(exc)) from None
    try:
        parsed = parse_search(" ".join(query), topics)
    except SearchSyntaxError as exc:
        raise click.UsageError(str(exc)) from None
    if parsed.empty:
        raise click.UsageError("give at least one word to search for")
    hits = _run(_search(settings, parsed, limit))
    if as_json:
        out.print_json(
            json.dumps(
                [
                    {
                        "id": h.story_id,
                        "title": h.title,
                        "url": h.url,
                        "outlet": h.outlet,
                        "published": h.published_at.isoformat(),
                        "topics": list(h.topics),
                    }
                    for h in hits
                ]
            ),
            indent=2,
        )
        return
    if not hits:
        out.print("No stored story matches.")
        return
    table = Table()
    for column in ("published (UTC)", "topics", "title", "outlet"):
        table.add_column(column, overflow="fold")
    for h in hits:
        table.add_row(
            h.published_at.strftime("%Y-%m-%d %H:%M"), ", ".join(h.topics), f"{h.title}\n{h.url}", h.outlet
        )
    out.print(table)


async def _search(settings: Settings, query: Any, limit: int) -> Any:
    from bot.store.chat import ChatStore
    from bot.store.db import create_engine, migrate

    engine = create_engine(settings.database_url)
    try:
        await migrate(engine)
        return await ChatStore(engine).search(query, limit=limit)
    finally:
        await engine.dispose()


def _story_json(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "cluster_id": r.cluster_id,
        "title": r.title,
        "url": r.url,
        "summary": r.summary,
        "outlet": r.outlet,
        "outlets": r.outlets,
        "published": r.published_at.isoformat(),
        "first_seen": r.first_seen_at.isoformat(),
        "topics": r.topics,
        "evidence": r.evidence,
    }


# ---------------------------------------------------------------------------------------- classify / eval
@main.command()
@click.option("--explain", is_flag=True, help="Add the evidence (terms that drove each topic).")
def classify(explain: bool) -> None:
    """Classify JSON Lines from stdin ({"title": ..., "summary": ...}); one JSON line out per input."""
    from bot.classify import TopicsConfigError, load_classifier
    from bot.classify.jsonl import classify_lines

    settings = _settings()
    try:
        classifier = load_classifier(settings.topics_file, settings.topic_model)
    except TopicsConfigError as exc:
        err.print(f"error: {exc}", markup=False)
        sys.exit(2)
    lines = errors = 0
    for line in classify_lines(classifier, sys.stdin, explain=explain):
        sys.stdout.write(line + "\n")
        lines += 1
        errors += line.startswith('{"error"')
    sys.stdout.flush()
    if lines and errors == lines:  # nothing could be classified: say so to scripts too
        err.print(f"error: none of the {lines} input lines could be classified", markup=False)
        sys.exit(1)


def _corpus_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--data",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("config/labelled"),
        show_default=True,
        help=help_text,
    )


@main.command(name="eval")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--splits",
    is_flag=True,
    help="Report every split of the labelled corpus (train, validation, test) instead of FILES.",
)
@click.option(
    "--cross-validate",
    "cross",
    is_flag=True,
    help="Report the training procedure on outlet-months it never saw: train + validation in 5 folds "
    "grouped by outlet-month, each scored by a model trained on the other four (takes minutes).",
)
@_corpus_option("The labelled corpus (with --splits or --cross-validate).")
def eval_command(files: tuple[Path, ...], splits: bool, cross: bool, data: Path) -> None:
    """Per-topic precision, recall and F1, macro-F1, the hard-negative rate and the misclassified
    items of labelled JSONL files (records with `topics` or `labels`); --splits reports each split,
    --cross-validate the training procedure on outlet-months it never saw."""
    from bot.classify import TopicsConfigError, load_classifier
    from bot.classify.evaluate import LabeledSetError, evaluate, format_report, load_labeled

    settings = _settings()
    if cross:
        _eval_cross_validated(settings, data)
        return
    if splits:
        files = tuple(data / f"{name}.jsonl" for name in ("train", "validation", "test"))
        missing = [str(f) for f in files if not f.exists()]
        if missing:
            err.print(f"error: no labelled corpus at {data} (missing {', '.join(missing)})", markup=False)
            sys.exit(2)
    if not files:
        err.print("error: give a labelled JSONL file, or --splits", markup=False)
        sys.exit(2)
    try:
        classifier = load_classifier(settings.topics_file, settings.topic_model)
        reports = []
        for file in files:
            items = load_labeled(file)
            if not items:
                raise LabeledSetError(f"{file}: no labelled items")
            reports.append((file, evaluate(classifier, items)))
    except (TopicsConfigError, LabeledSetError) as exc:
        err.print(f"error: {exc}", markup=False)
        sys.exit(2)
    for n, (file, report) in enumerate(reports):
        if len(reports) > 1:
            out.print(f"{'' if n == 0 else chr(10)}== {file} ==", markup=False)
        out.print(format_report(report, max_items=20 if splits else None), markup=False)


def _eval_cross_validated(settings: Settings, data: Path) -> None:
    from bot.classify import RuleClassifier, TopicsConfigError
    from bot.classify.evaluate import LabeledSetError, format_report, load_labeled, score_results
    from bot.classify.taxonomy import load_taxonomy
    from bot.classify.train import FOLDS, cross_validate

    files = [data / "train.jsonl", data / "validation.jsonl"]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        err.print(f"error: no labelled corpus at {data} (missing {', '.join(missing)})", markup=False)
        sys.exit(2)
    try:
        rules = RuleClassifier(load_taxonomy(settings.topics_file))
        items = [item for f in files for item in load_labeled(f)]
        results = cross_validate(rules, items)
        report = score_results(rules.topics, items, results)
    except (TopicsConfigError, LabeledSetError) as exc:
        err.print(f"error: {exc}", markup=False)
        sys.exit(2)
    out.print(f"== {' + '.join(str(f) for f in files)}, {FOLDS} folds by outlet-month ==", markup=False)
    out.print(format_report(report, max_items=20), markup=False)


@main.command(name="cluster-eval")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--details", is_flag=True, help="Add the wrong merges and the splits.")
def cluster_eval_command(file: Path, details: bool) -> None:
    """How well stories are grouped: labelled coverage (JSONL records with title, summary, url,
    outlet, published, event) runs through the ingest's clustering in published order; prints one
    JSON object with pairwise and B-cubed precision, recall and F1, events and clusters."""
    from bot.pipeline.cluster import ClusterIndex
    from bot.pipeline.cluster_eval import CoverageSetError, evaluate_clustering, format_details, load_coverage

    settings = _settings()
    index = ClusterIndex(
        window=timedelta(hours=settings.cluster_window_hours),
        threshold=settings.cluster_similarity,
        linkage_floor=settings.cluster_linkage,
    )
    try:
        report = evaluate_clustering(load_coverage(file), index)
    except CoverageSetError as exc:
        err.print(f"error: {exc}", markup=False)
        sys.exit(2)
    result = report.figures()
    if details:
        result.update(format_details(report))
    sys.stdout.write(json.dumps(result, ensure_ascii=False, indent=2 if details else None) + "\n")


@main.command()
@_corpus_option("The labelled corpus: its train.jsonl and validation.jsonl are read (never test.jsonl).")
@click.option(
    "--extra",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="More labelled JSONL for training (your own labels, `frontierwatch feedback export`). Repeatable.",
)
@click.option("--feedback", is_flag=True, help="Also learn from the chat feedback stored in the database.")
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the model (default: the packaged model file). Use it with FW_TOPIC_MODEL.",
)
def train(data: Path, extra: tuple[Path, ...], feedback: bool, out_path: Path | None) -> None:
    """Train the learned topic model from the labelled corpus (reproducible: same data, same file)."""
    from bot.classify import PACKAGED_MODEL, RuleClassifier, TopicsConfigError
    from bot.classify.evaluate import LabeledSetError
    from bot.classify.taxonomy import load_taxonomy
    from bot.classify.train import load_training_data, train_model

    settings = _settings()
    target = out_path or PACKAGED_MODEL
    train_files = [data / "train.jsonl", *extra]
    validation = [data / "validation.jsonl"]
    missing = [str(f) for f in (*train_files, *validation) if not f.exists()]
    if missing:
        err.print(f"error: missing labelled data: {', '.join(missing)}", markup=False)
        sys.exit(2)
    try:
        rules = RuleClassifier(load_taxonomy(settings.topics_file))
        if feedback:
            exported = _run(_export_feedback_file(settings))
            train_files.append(exported)
        loaded = load_training_data(train_files, validation)
    except (TopicsConfigError, LabeledSetError) as exc:
        err.print(f"error: {exc}", markup=False)
        sys.exit(2)
    model = train_model(rules, loaded)
    model.save(target)
    for topic, info in model.meta["topics"].items():
        if info.get("model"):
            v = info["cross_validated_at_threshold"]
            threshold = next(t.threshold for t in model.topics if t.name == topic)
            out_line = (
                f"{topic}: learned (C={info['C']:g}, naive Bayes weight {info.get('naive_bayes_weight', 0):g}, "
                f"{info['train_positives']} labelled examples); "
                f"cross-validated by outlet-month at threshold {threshold:.2f}: precision "
                f"{v['precision']:.3f}, recall {v['recall']:.3f}, F1 {v['f1']:.3f}"
            )
            gate = info.get("model_requires_context")
            if gate:
                out_line += (
                    "; the model is trained, measured and used only where one of the topic's contexts is "
                    f"present ({gate['stories_in_context']} stories; {gate['positives_outside']} of its "
                    "examples have none: there its rules decide)"
                )
        else:
            out_line = f"{topic}: rules only ({info['train_positives']} training examples; {info['reason']})"
        out.print(out_line, markup=False)
    size = target.stat().st_size
    out.print(
        f"wrote {target} ({size / 1024:.0f} KB, {model.meta['features']} features, "
        f"{model.meta['train_items']} training and {model.meta['validation_items']} validation items)",
        markup=False,
    )


async def _feedback_records(settings: Settings) -> list[dict[str, object]]:
    from bot.store.db import create_engine, migrate
    from bot.store.feedback import FeedbackStore

    engine = create_engine(settings.database_url)
    try:
        await migrate(engine)
        return await FeedbackStore(engine).export()
    finally:
        await engine.dispose()


async def _export_feedback_file(settings: Settings) -> Path:
    """The chat feedback as a labelled JSONL file next to the database, for `train --feedback`."""
    import tempfile

    from bot.store.feedback import export_lines

    records = await _feedback_records(settings)
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", suffix="-feedback.jsonl", prefix="frontierwatch-", delete=False
    ) as handle:
        handle.write(export_lines(records))
    return Path(handle.name)


@main.group()
def feedback() -> None:
    """Readers' "Not relevant" / "Wrong topic" clicks on alerts, as labelled examples."""


@feedback.command(name="export")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to this file instead of stdout.",
)
def feedback_export(output: Path | None) -> None:
    """Write every judged story in the labelling guide's JSON Lines format (for `train --extra`)."""
    from bot.store.feedback import export_lines

    settings = _settings()
    _logging("WARNING")
    records = _run(_feedback_records(settings))
    text = export_lines(records)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        err.print(f"wrote {len(records)} labelled stories to {output}", markup=False)


# ---------------------------------------------------------------------------------------- trends
@main.command()
@click.option(
    "--days",
    type=click.IntRange(1, 3660),
    default=90,
    show_default=True,
    help="How many days, today included.",
)
@click.option(
    "--top", type=click.IntRange(1, 100), default=5, show_default=True, help="Outlets and names per topic."
)
@click.option("--timezone", "tz", default="UTC", show_default=True, help="Whose days (an IANA zone).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object: daily counts, outlets, names.")
@click.option(
    "--chart",
    "chart_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the weekly digest's chart (PNG) for the last 12 weeks to this file.",
)
def trends(days: int, top: int, tz: str, as_json: bool, chart_path: Path | None) -> None:
    """Events per topic per day (clusters: a story five outlets covered counts once), with each
    topic's top outlets and the names in its headlines."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from bot.classify.taxonomy import TopicsConfigError, load_taxonomy

    settings = _settings()
    _logging("WARNING")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        err.print(f"error: unknown time zone {tz!r}", markup=False)
        sys.exit(2)
    try:
        topics = load_taxonomy(settings.topics_file).topic_names
    except TopicsConfigError as exc:
        err.print(f"error: {exc}", markup=False)
        sys.exit(2)
    found, png = _run(_trends(settings, days, top, tz, topics, chart_path is not None))
    if chart_path is not None and png is not None:
        chart_path.write_bytes(png)
        err.print(f"wrote the chart to {chart_path}", markup=False)
    if as_json:
        sys.stdout.write(json.dumps(found.to_dict(), ensure_ascii=False) + "\n")
        return
    out.print(
        f"events per topic, {found.first_day} to {found.last_day} ({found.timezone}); "
        "an event is a cluster of stories",
        markup=False,
    )
    for topic in found.daily.topics:
        counts = found.daily.counts[topic]
        last_week = sum(counts[-7:])
        out.print(
            f"\n{topic}: {found.daily.total(topic)} events ({last_week} in the last 7 days)", markup=False
        )
        outlets = ", ".join(f"{o} {n}" for o, n in found.outlets[topic]) or "-"
        names = ", ".join(f"{e} {n}" for e, n in found.entities[topic]) or "-"
        out.print(f"  outlets: {outlets}", markup=False)
        out.print(f"  names:   {names}", markup=False)


async def _trends(
    settings: Settings, days: int, top: int, tz: str, topics: tuple[str, ...], chart: bool
) -> tuple[Any, bytes | None]:
    from bot.store.db import create_engine, migrate
    from bot.store.trends import TrendsStore

    engine = create_engine(settings.database_url)
    try:
        await migrate(engine)
        store = TrendsStore(engine)
        found = await store.trends(days=days, timezone=tz, topics=topics, top=top)
        png = None
        if chart:
            from bot.delivery.digests import CHART_TITLE
            from bot.trends.chart import render_chart_png

            png = render_chart_png(await store.weekly(timezone=tz, topics=topics), CHART_TITLE)
        return found, png
    finally:
        await engine.dispose()


# ---------------------------------------------------------------------------------------- sources
@main.group()
def sources() -> None:
    """Inspect configured sources, check a feed URL, pause (disable) and resume (enable) a source,
    import and export OPML."""


@sources.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per source (for scripts).")
def sources_list(as_json: bool) -> None:
    """Every source with its fetch state (last result, failures, next poll).

    On a terminal: a table. Piped or redirected: plain tab-separated columns with a header line,
    one source per line (a wrapped table is unreadable there), or JSON Lines with --json."""
    settings = _settings()
    _logging("WARNING")
    rows, channel_pauses = _run(_sources_list(settings))
    columns = ("id", "name", "kind", "where", "state", "last error", "next poll (UTC)")
    records = []
    for s in rows:
        if not s.enabled:
            state = "disabled"
        elif s.paused_at is not None:
            state = f"paused by {s.paused_by or 'the operator'} {s.paused_at:%Y-%m-%d %H:%M}"
        elif s.id in channel_pauses:
            state = "paused by its channels: " + "; ".join(
                f"{p.channel} ({p.by}) {p.at:%Y-%m-%d %H:%M}" for p in channel_pauses[s.id]
            )
        elif s.last_polled_at is None:
            state = "never polled"
        elif s.failure_count:
            state = f"failing ×{s.failure_count}"
        else:
            state = f"ok ({s.last_status})"
        records.append(
            (str(s.id), s.name, s.kind, s.url or s.org or s.repo or "", state, s.last_error or "",
             s.next_poll_at.strftime("%Y-%m-%d %H:%M"))
        )  # fmt: skip
    if as_json:
        for record in records:
            sys.stdout.write(json.dumps(dict(zip(columns, record, strict=True)), ensure_ascii=False) + "\n")
        return
    if not sys.stdout.isatty():
        sys.stdout.write("\t".join(columns) + "\n")
        for record in records:
            sys.stdout.write("\t".join(" ".join(field.split()) for field in record) + "\n")
        return
    table = Table()
    for column in columns:
        table.add_column(column, overflow="fold")
    for record in records:
        table.add_row(*record)
    out.print(table)


async def _sources_list(settings: Settings) -> Any:
    app = await _build_app(settings, parse_workers=-1)
    try:
        return await app.store.list_sources(), await app.store.channel_pauses()
    finally:
        await app.close()


@sources.command(name="disable")
@click.argument("name")
def sources_disable(name: str) -> None:
    """Pause the source NAME (or id) for the whole installation: it is not polled, on any replica,
    until `sources enable`. Survives restarts; its stories stay. For good, set `enabled = false` in
    the sources file instead."""
    settings = _settings()
    _logging("WARNING")
    result = _run(_set_source_paused(settings, name, paused=True))
    when = f"{result.paused_at:%Y-%m-%d %H:%M} UTC" if result.paused_at else ""
    if not result.changed:
        out.print(
            f"{result.name} (id {result.id}) was already paused by {result.paused_by} since {when}",
            markup=False,
        )
        return
    out.print(
        f"paused {result.name} (id {result.id}): not polled until `frontierwatch sources enable {result.id}`",
        markup=False,
    )


@sources.command(name="enable")
@click.argument("name")
def sources_enable(name: str) -> None:
    """Resume the source NAME (or id) paused by `sources disable`: it is polled at once."""
    settings = _settings()
    _logging("WARNING")
    result = _run(_set_source_paused(settings, name, paused=False))
    if result.changed:
        out.print(f"resumed {result.name} (id {result.id}): due for a poll now", markup=False)
    else:
        out.print(f"{result.name} (id {result.id}) was not paused by the operator", markup=False)
    if not result.enabled:
        out.print(
            "  note: the sources file disables it (`enabled = false`), so it is still not polled",
            markup=False,
        )
    if result.channels:
        who = "; ".join(f"{p.channel} ({p.by}) {p.at:%Y-%m-%d %H:%M} UTC" for p in result.channels)
        out.print(
            f"  note: every channel that added it paused it ({who}), so it is still not polled until one of "
            "them runs `/watch sources resume`",
            markup=False,
        )


def _operator_name() -> str:
    import getpass

    try:
        return f"{getpass.getuser()} (operator)"
    except (KeyError, OSError):  # no login name in a bare container
        return "the operator"


async def _set_source_paused(settings: Settings, name: str, *, paused: bool) -> Any:
    app = await _build_app(settings, parse_workers=-1)
    try:
        rows = await app.store.list_sources()
        wanted = name.strip()
        found = [s for s in rows if str(s.id) == wanted.lstrip("#")] or [
            s for s in rows if s.name.casefold() == wanted.casefold()
        ]
        if len(found) > 1:  # a channel may have added a feed under a built-in source's name
            ids = ", ".join(f"{s.id} ({s.origin})" for s in found)
            raise _ConfigProblem(f"{len(found)} sources are named {wanted!r}: ids {ids}; give the id instead")
        if not found:
            close = difflib.get_close_matches(wanted, [s.name for s in rows], n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else "; see `frontierwatch sources list`"
            raise _ConfigProblem(f"no source named {wanted!r}{hint}")
        if paused:
            return await app.store.pause_source(found[0].id, _operator_name())
        return await app.store.resume_source(found[0].id)
    finally:
        await app.close()


@sources.command(name="check")
@click.argument("url")
def sources_check(url: str) -> None:
    """Fetch and parse URL once (with the SSRF guard) and show what would be ingested; stores nothing."""
    settings = _settings()
    _logging("WARNING")
    ok = _run(_sources_check(settings, url))
    sys.exit(0 if ok else 1)


async def _sources_check(settings: Settings, url: str) -> bool:
    from bot.classify import load_classifier
    from bot.sources.fetcher import FeedFetcher
    from bot.sources.parser import parse_feed

    classifier = load_classifier(settings.topics_file, settings.topic_model)
    async with FeedFetcher(settings) as fetcher:
        result = await fetcher.fetch(url)
    if result.error is not None or result.body is None:
        err.print(f"✗ {url}: {result.error or 'no body'}", markup=False)
        return False
    parsed = await asyncio.to_thread(parse_feed, result.body, result.headers, result.final_url)
    if parsed.error is not None:
        err.print(f"✗ {url}: {parsed.error}", markup=False)
        return False
    note = f" (feed is malformed but readable: {parsed.bozo_reason})" if parsed.bozo else ""
    out.print(
        f"✓ {parsed.title or url}: {len(parsed.entries)} entries, HTTP {result.status}{note}", markup=False
    )
    if result.final_url != url:
        out.print(f"  redirected to {result.final_url}", markup=False)
    for entry in parsed.entries[:10]:
        c = classifier.classify(entry.title, entry.summary, entry.url)
        label = ", ".join(c.topics) or "-"
        when = entry.published.strftime("%Y-%m-%d") if entry.published else "no date"
        out.print(f"  [{label}] {when} {entry.title}", markup=False)
    return True


@sources.command(name="import")
@click.argument("opml_file", metavar="FILE.opml", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Report what would happen; leave the sources file alone.")
@click.option(
    "--no-dns",
    is_flag=True,
    help="Do not look host names up for the SSRF check (IP-address URLs are still judged; the poller "
    "checks every address it dials anyway). For offline machines.",
)
@click.option("--verbose", "-v", is_flag=True, help="Also list every added and already present feed.")
def sources_import(opml_file: Path, dry_run: bool, no_dns: bool, verbose: bool) -> None:
    """Merge the feeds of an OPML export (Feedly, Inoreader, Miniflux, NetNewsWire …) into the
    sources file, keeping its comments and layout.

    Prints one line per refused outline with the reason, then
    `added N, already present N, refused N`. Exit status: 0 when nothing was refused, 1 when some
    outlines were refused (the others are still merged), 2 when the OPML or sources file is unusable.
    Folders are read through and otherwise ignored; importing the same file again adds nothing."""
    settings = _settings()
    _logging("WARNING")
    refused = _run(_sources_import(settings, opml_file, dry_run=dry_run, resolve=not no_dns, verbose=verbose))
    sys.exit(1 if refused else 0)


async def _sources_import(
    settings: Settings, opml_file: Path, *, dry_run: bool, resolve: bool, verbose: bool
) -> int:
    import tomllib

    from bot.sources.config import SourcesConfigError, load_sources
    from bot.sources.opml import (
        OpmlError,
        SourcesFileError,
        merge_into_sources,
        plan_import,
        read_outlines,
        write_atomically,
    )
    from bot.sources.urlsafety import check_url

    try:
        data = opml_file.read_bytes()
    except OSError as exc:
        raise _ConfigProblem(f"{opml_file}: cannot read it: {exc.strerror or exc}") from None
    try:
        _, outlines = read_outlines(data)
    except OpmlError as exc:
        raise _ConfigProblem(f"{opml_file}: {exc}") from None
    target = settings.sources_file
    text = ""
    if target.exists():
        # The file must already be valid: merging into a file the bot refuses would hide its error.
        try:
            load_sources(target, default_interval=settings.default_interval_minutes)
        except SourcesConfigError as exc:
            raise _ConfigProblem(str(exc)) from None
        text = target.read_text(encoding="utf-8")
    existing = tomllib.loads(text).get("sources", []) if text.strip() else []

    async def vet(url: str) -> None:
        await check_url(url, allow_private=settings.allow_private_sources, resolve=resolve)

    plan = await plan_import(outlines, existing, check_url=vet)
    for refusal in plan.refused:
        shown = refusal.outline.xml_url.strip() if refusal.outline.xml_url else "(no xmlUrl)"
        out.print(f"refused: {refusal.outline.where} — {shown}: {refusal.reason}", markup=False)
    if verbose:
        for item in plan.added:
            out.print(f"{'would add' if dry_run else 'added'}: {item.name} — {item.url}", markup=False)
        for present in plan.present:
            out.print(
                f"already present: {present.outline.where} — {present.outline.xml_url} (as {present.same_as!r})",
                markup=False,
            )
    if dry_run:
        note = f"dry run: {target} not changed"
    elif not plan.added:
        note = f"{target} not changed"
    else:
        when = datetime.now(UTC).strftime("%Y-%m-%d")
        comment = f"Imported from {opml_file.name} on {when} by `frontierwatch sources import`."
        try:
            merged = merge_into_sources(text, plan.added, comment=comment)
        except (SourcesFileError, SourcesConfigError) as exc:
            raise _ConfigProblem(f"{target}: {exc}") from None
        try:
            write_atomically(target, merged.encode("utf-8"))
        except OSError as exc:
            raise _ConfigProblem(f"{target}: cannot write it: {exc.strerror or exc}") from None
        note = f"wrote {target}; a running bot polls the new sources after its next start"
    out.print(f"{plan.summary()} ({note})", markup=False)
    return len(plan.refused)


@sources.command(name="export")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the OPML document to this file instead of standard output.",
)
@click.option(
    "--file-only", is_flag=True, help="Only the sources file's feeds: no database, no channel-added feeds."
)
def sources_export(output: Path | None, file_only: bool) -> None:
    """Write the sources as OPML 2.0 for a feed reader: the sources file's enabled feeds, then the
    feeds chat channels added with `/watch sources add` in a folder of their own.

    Trackers (hf_models, github_releases) are not feeds and are left out; what was left out is
    said on standard error."""
    settings = _settings()
    _logging("WARNING")
    document, report = _run(_sources_export(settings, file_only=file_only))
    if output is None:
        sys.stdout.buffer.write(document)
        sys.stdout.flush()
    else:
        from bot.sources.opml import write_atomically

        try:
            write_atomically(output, document)
        except OSError as exc:
            err.print(f"error: {output}: cannot write it: {exc.strerror or exc}", markup=False)
            sys.exit(2)
    err.print(report + (f"; wrote {output}" if output is not None else ""), markup=False)


async def _sources_export(settings: Settings, *, file_only: bool) -> tuple[bytes, str]:
    from bot.sources.config import SourcesConfigError, load_sources
    from bot.sources.normalize import canonical_url
    from bot.sources.opml import ExportedFeed, render_opml

    try:
        specs = load_sources(settings.sources_file, default_interval=settings.default_interval_minutes)
    except SourcesConfigError as exc:
        raise _ConfigProblem(str(exc)) from None
    feeds = [ExportedFeed(s.name, s.url, "file") for s in specs if s.kind == "feed" and s.enabled]
    trackers = sum(1 for s in specs if s.kind != "feed")
    disabled = sum(1 for s in specs if s.kind == "feed" and not s.enabled)
    channel: list[tuple[str, str]] = []
    if not file_only:
        app = await _build_app(settings, sync_sources=False, parse_workers=-1)
        try:
            channel = await app.store.channel_feeds()
        finally:
            await app.close()
    seen = {canonical_url(feed.url) for feed in feeds}
    from_channels = 0
    for name, url in channel:
        # A channel may have added a feed the file also lists (spelled alike or not): one outline.
        if canonical_url(url) in seen:
            continue
        seen.add(canonical_url(url))
        feeds.append(ExportedFeed(name, url, "channel"))
        from_channels += 1
    document = render_opml(feeds, title="Frontier Watch sources", created=datetime.now(UTC))
    left_out = [
        part
        for part in (
            f"{trackers} tracker(s) (hf_models/github_releases are not feeds)" if trackers else "",
            f"{disabled} disabled" if disabled else "",
        )
        if part
    ]
    report = (
        f"exported {len(feeds)} feeds ({len(feeds) - from_channels} from {settings.sources_file}, "
        f"{'channel feeds not read (--file-only)' if file_only else f'{from_channels} added by channels'})"
        + (f"; left out {', '.join(left_out)}" if left_out else "")
    )
    return document, report


# ---------------------------------------------------------------------------------------- migrate / demo
@main.command()
def migrate() -> None:
    """Create or upgrade the database schema (also done at every start)."""
    from bot.store.db import create_engine, current_revision
    from bot.store.db import migrate as do_migrate

    settings = _settings()

    async def go() -> str | None:
        engine = create_engine(settings.database_url)
        try:
            await do_migrate(engine)
            return await current_revision(engine)
        finally:
            await engine.dispose()

    revision = _run(go())
    out.print(f"database {_safe_url(settings.database_url)} is at revision {revision}", markup=False)


@main.command()
@click.option("--keep", is_flag=True, help="Keep the demo database (./data/demo.sqlite3) afterwards.")
def demo(keep: bool) -> None:
    """Serve the sample feeds shipped in the repo from a local server and run one full cycle:
    stories are fetched, classified, clustered and shown as a console digest. No network, no tokens."""
    from bot.demo import run_demo

    _logging("WARNING")
    _run(run_demo(out, keep=keep))


# ---------------------------------------------------------------------------------------- digest
@main.command()
@click.option("--preview", is_flag=True, help="Print what would be posted; send and store nothing.")
@click.option(
    "--since", "since", default=None, metavar="DURATION", help="Preview period, e.g. 24h (default 24h)."
)
@click.option("--topic", "topic", metavar="T", help="Preview only this topic.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "discord-json", "slack-json"]),
    default="text",
    show_default=True,
    help="text, or the JSON request bodies that would be sent to Discord or Slack.",
)
@click.option("--destination", "destination", type=int, default=None, help="Preview for this destination id.")
def digest(preview: bool, since: str | None, topic: str | None, fmt: str, destination: int | None) -> None:
    """Send the digests that are due now, once (without --preview), or preview a digest.

    The JSON formats print one request body per message, in order: a long digest is split into
    several messages within the platform's limits. Discord bodies are shown without the per-send
    nonce, Slack bodies without the delivery-id metadata (both exist only once a digest is queued).
    """
    settings = _settings()
    _logging("WARNING")
    if preview:
        window = parse_duration(since or "24h")
        text = _run(_digest_preview(settings, window, topic, fmt, destination))
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    if since or topic or destination is not None or fmt != "text":
        err.print("error: --since, --topic, --destination and --format only apply to --preview", markup=False)
        sys.exit(2)
    planned, sent = _run(_digest_send(settings))
    out.print(f"{planned} digest(s) due; {sent} message(s) sent.", markup=False)


async def _digest_preview(
    settings: Settings, window: timedelta, topic: str | None, fmt: str, destination: int | None
) -> str:
    from bot.classify.keywords import KeywordFilter
    from bot.delivery.digests import DIGEST_TITLE, destination_selection
    from bot.delivery.preview import digest_text, digest_wire_bodies
    from bot.digest.common import DigestHeader
    from bot.digest.entries import Selection, TopicRule, select_entries
    from bot.store.destinations import destination_row
    from bot.timetable import local_date_label

    app = await _build_app(settings, sync_sources=False, parse_workers=-1)
    try:
        topics = app.classifier.topics
        if topic is not None and topic not in topics:
            raise _ConfigProblem(f"unknown topic {topic!r}; known topics: {', '.join(topics)}")
        now = datetime.now(UTC)
        platform = {"text": "console", "discord-json": "discord", "slack-json": "slack"}[fmt]
        tz, channel = "UTC", "<channel id>"
        async with app.store.sessions() as session:
            if destination is not None:
                dest = await destination_row(session, destination)
                if dest is None:
                    raise _ConfigProblem(f"no destination with id {destination}")
                selection = await destination_selection(session, dest, now - window, now)
                selection.destination_id = None  # a preview shows the period, whatever was sent
                tz, channel = dest.timezone, dest.channel_id
                if topic is not None:
                    selection.rules = [r for r in selection.rules if r.topic == topic]
            else:
                chosen = [topic] if topic else list(topics)
                selection = Selection(
                    since=now - window,
                    until=now,
                    rules=[TopicRule(t) for t in chosen],
                    keywords=KeywordFilter(),
                )
            entries = await select_entries(session, selection, topics)
        header = DigestHeader(DIGEST_TITLE, now, local_date_label(now, tz), len(entries))
        if fmt == "text":
            return digest_text(header, entries)
        bodies = digest_wire_bodies(platform, header, entries, channel)
        return json.dumps(bodies, indent=2, ensure_ascii=False) + "\n"
    finally:
        await app.close()


async def _digest_send(settings: Settings) -> tuple[int, int]:
    from bot.delivery.services import Delivery, ensure_console_destination

    app = await _build_app(settings, sync_sources=False, parse_workers=-1)
    try:
        topics = app.classifier.topics
        await ensure_console_destination(app.store, settings, topics)
        delivery = Delivery.build(app.store, settings, topics)
        planned = await delivery.digests.tick()
        sent = await delivery.worker.drain(within=300.0)
        await delivery.worker.stop()
        return len(planned), sent
    finally:
        await app.close()


# ---------------------------------------------------------------------------------------- web console
@main.group()
def web() -> None:
    """The web console (served by `frontierwatch serve` when FW_WEB_PASSWORD or
    FW_WEB_PASSWORD_HASH is set; see docs/console.md)."""


@web.command(name="hash-password")
def web_hash_password() -> None:
    """Print an argon2 hash of the console password, for FW_WEB_PASSWORD_HASH.

    On a terminal the password is asked twice and not echoed; otherwise it is the first line of
    standard input (e.g. from a password manager's command line). It is never printed or logged."""
    from bot.console.auth import hash_password

    if sys.stdin.isatty():
        password = click.prompt("Console password", hide_input=True, confirmation_prompt=True, err=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password.strip():
        err.print("error: the password is empty", markup=False)
        sys.exit(2)
    sys.stdout.write(hash_password(password) + "\n")


# ---------------------------------------------------------------------------------------- serve (issue 4)
@main.command()
def serve() -> None:
    """Serve HTTP on $PORT (default 8080) and FW_HOST (default 0.0.0.0): /healthz, /metrics, Slack's
    /slack/events, the Slack OAuth pages and, when FW_WEB_PASSWORD (or FW_WEB_PASSWORD_HASH) is set,
    the web console at /.

    This is the Procfile's `web:` process. It never opens the Discord gateway or polls; `frontierwatch
    run` does that (and serves HTTP too when PORT is set).
    """
    settings = _settings()
    _logging(settings.log_level)
    _run(_serve(settings))


async def _serve(settings: Settings) -> None:
    from bot.platforms.services import platform_services

    app = await _build_app(settings, sync_sources=False, parse_workers=-1)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        from bot.delivery.services import queue_only_digests

        app.digests = queue_only_digests(app)  # `/watch digest now` queues; `run` sends
        app.services.extend(platform_services(app, role="web"))
        await app.start_services()
        err.print(
            f"Frontier Watch {__version__}: serving HTTP on {settings.bind_host('web')} port {settings.port}. "
            "Ctrl-C stops.",
            markup=False,
        )
        await stop.wait()
    finally:
        err.print("stopping…", markup=False)
        await app.close()
