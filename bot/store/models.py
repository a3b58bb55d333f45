"""SQLAlchemy 2 models. The same models serve SQLite (embedded default) and PostgreSQL.

Schema changes go through Alembic migrations in ``bot/store/migrations``; never ``create_all``
in production paths.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Always stores UTC and always gives back an aware UTC datetime.

    SQLite has no time zones and returns naive values; without this, comparisons between
    stored and fresh datetimes would raise or silently shift.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use timezone-aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}  # noqa: RUF012 (SQLAlchemy API)


class Source(Base):
    """A feed or tracker, with its fetch state."""

    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(
        String(600), unique=True
    )  # kind:url | hf_models:org | github_releases:o/n
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32), default="feed")
    url: Mapped[str | None] = mapped_column(Text)
    org: Mapped[str | None] = mapped_column(String(200))
    repo: Mapped[str | None] = mapped_column(String(200))
    interval_minutes: Mapped[int] = mapped_column(Integer, default=30)
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # The publisher's own feed, as sources.toml says (never a channel-added source). Copied onto
    # each story at ingest (stories.official), so digests and routing need no join back to here.
    official: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    origin: Mapped[str] = mapped_column(String(16), default="config")  # config | channel
    owner_scope: Mapped[str | None] = mapped_column(String(200))  # "discord:guild:channel" for channel-added
    # --- fetch state
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(String(100))
    next_poll_at: Mapped[datetime] = mapped_column(index=True)
    lease_until: Mapped[datetime | None]
    # Which poller holds the lease: a late save from a replica that lost it must not clear or
    # overwrite the lease (and state) of the replica that took the source over.
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    # The 12-byte hashes of the item elements of the last stored poll, concatenated (delta parsing;
    # see bot/sources/delta.py). In the store, so no replica keeps a set per source in memory.
    item_hashes: Mapped[bytes | None] = mapped_column(LargeBinary)
    last_polled_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    last_status: Mapped[int | None] = mapped_column(Integer)
    failure_count: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    backlog_done: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    # The operator paused it for the whole installation (`frontierwatch sources disable`): not
    # polled. Apart from ``enabled``, which the sources file owns and every start rewrites.
    paused_at: Mapped[datetime | None]
    paused_by: Mapped[str | None] = mapped_column(String(200))


class Cluster(Base):
    """One real-world story as told by one or more outlets. Its id is the id of the story that
    founded it (``representative_story_id``)."""

    __tablename__ = "clusters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    representative_story_id: Mapped[int | None] = mapped_column(Integer)
    first_seen_at: Mapped[datetime] = mapped_column(index=True)
    last_seen_at: Mapped[datetime]
    sources_count: Mapped[int] = mapped_column(Integer, default=1)


class Story(Base):
    """One article (one canonical URL), wherever it was seen."""

    __tablename__ = "stories"
    __table_args__ = (
        Index("ix_stories_cluster_id", "cluster_id"),
        Index("ix_stories_unrouted", "routed", "first_seen_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url_hash: Mapped[str] = mapped_column(String(40), unique=True)
    url: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text, default="")
    outlet: Mapped[str] = mapped_column(String(200))
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    # Null only inside the transaction that founds the story's cluster (cluster id = story id).
    cluster_id: Mapped[int] = mapped_column(ForeignKey("clusters.id"), nullable=True)
    published_at: Mapped[datetime] = mapped_column(index=True)
    first_seen_at: Mapped[datetime] = mapped_column(index=True)
    backlog: Mapped[bool] = mapped_column(Boolean, default=False)  # stored by a source's first poll
    # False until the delivery router has queued its alerts (in the router's own transaction), so a
    # crash between storing and routing is repaired at the next start instead of losing alerts.
    routed: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # Seen in an official source's feed (set at ingest, and by a later sighting in one): a column
    # rather than a join through source_entries, because every digest and routing pass reads it.
    official: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)


class SourceEntry(Base):
    """An entry as seen in one source; makes re-polling idempotent."""

    __tablename__ = "source_entries"
    __table_args__ = (UniqueConstraint("source_id", "guid_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    guid_hash: Mapped[str] = mapped_column(String(40))
    outlet: Mapped[str] = mapped_column(String(200))
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"), index=True)
    seen_at: Mapped[datetime]


class Classification(Base):
    """A topic score of a story, with the evidence that drove it."""

    __tablename__ = "classifications"

    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"), primary_key=True)
    topic: Mapped[str] = mapped_column(String(64), primary_key=True)
    score: Mapped[float] = mapped_column(Float)
    passed: Mapped[bool] = mapped_column(Boolean, index=True)
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"terms": [...]}


# ---------------------------------------------------------------------------------------------
# Chat side: where stories go (issues 4 and 5).


class Destination(Base):
    """A place stories are posted to: a Discord or Slack channel, a webhook, or the console."""

    __tablename__ = "destinations"
    __table_args__ = (UniqueConstraint("platform", "workspace_id", "channel_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(
        String(32)
    )  # discord | slack | discord_webhook | slack_webhook | console
    workspace_id: Mapped[str] = mapped_column(String(64), default="")  # guild id / team id
    channel_id: Mapped[str] = mapped_column(String(200))  # channel id, webhook name, "console"
    name: Mapped[str] = mapped_column(String(200), default="")
    webhook_url: Mapped[str | None] = mapped_column(Text)  # secret-like: never logged or echoed
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    digest_time: Mapped[str] = mapped_column(String(5), default="08:00")  # HH:MM local
    digest_frequency: Mapped[str] = mapped_column(String(8), default="daily")  # daily | weekly | off
    digest_weekday: Mapped[str] = mapped_column(String(3), default="mon")
    next_digest_at: Mapped[datetime | None] = mapped_column(index=True)
    digest_lease_until: Mapped[datetime | None]
    # The outbox worker claims a whole destination, so one replica at a time sends to a channel
    # (platform rate limits are per channel, and digest parts must arrive in order).
    delivery_lease_until: Mapped[datetime | None]
    delivery_lease_owner: Mapped[str | None] = mapped_column(String(64))
    last_digest_at: Mapped[datetime | None]
    alert_cap_per_hour: Mapped[int] = mapped_column(Integer, default=5)
    quiet_day_notice: Mapped[bool] = mapped_column(Boolean, default=False)
    repeat_alerted_in_digest: Mapped[bool] = mapped_column(Boolean, default=False)
    # False when the platform said the channel is unreachable (deleted, bot removed); any
    # configuration command or `/watch resume` sets it again.
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    inactive_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    # `/watch pause`: nothing is queued for the channel (no alerts, digests or notices) until
    # `/watch resume`; other configuration commands leave it paused.
    paused_at: Mapped[datetime | None]
    paused_by: Mapped[str | None] = mapped_column(String(200))


class Subscription(Base):
    """A destination follows a topic, for alerts, the digest, or both."""

    __tablename__ = "subscriptions"
    __table_args__ = (UniqueConstraint("destination_id", "topic"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    destination_id: Mapped[int] = mapped_column(ForeignKey("destinations.id", ondelete="CASCADE"), index=True)
    topic: Mapped[str] = mapped_column(String(64))
    mode: Mapped[str] = mapped_column(String(8), default="both")  # alerts | digest | both
    min_score: Mapped[float] = mapped_column(Float, default=0.0)  # 0 = the topic's own threshold
    created_at: Mapped[datetime]


class ChannelKeyword(Base):
    """A destination's own include/exclude keywords, applied on top of topics."""

    __tablename__ = "channel_keywords"
    __table_args__ = (UniqueConstraint("destination_id", "kind", "keyword"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    destination_id: Mapped[int] = mapped_column(ForeignKey("destinations.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # include | exclude
    keyword: Mapped[str] = mapped_column(String(200))


class ChannelSource(Base):
    """A source a channel added with `/watch sources add` (the source row is shared)."""

    __tablename__ = "channel_sources"
    __table_args__ = (UniqueConstraint("destination_id", "source_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    destination_id: Mapped[int] = mapped_column(ForeignKey("destinations.id", ondelete="CASCADE"), index=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    added_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime]
    failure_notice_at: Mapped[datetime | None]  # when the channel was last told this source is broken
    # `/watch sources pause`: this channel paused the source it added. A channel-added source is
    # polled while any channel that added it has not paused it (see ``Store.claim_due_sources``).
    paused_at: Mapped[datetime | None]
    paused_by: Mapped[str | None] = mapped_column(String(200))


class MentionRule(Base):
    """`/watch alerts mention`: whom an alert in this channel pings, and for which stories.

    ``target_kind`` "group" is a Discord role or a Slack user group (``target_id`` its id), "here"
    is @here (``target_id`` ""). ``topic`` "" means any of the alert's topics; ``min_score`` 0
    means no minimum; ``official`` requires a cluster with an official source's story."""

    __tablename__ = "mention_rules"
    __table_args__ = (
        UniqueConstraint(
            "destination_id",
            "target_kind",
            "target_id",
            "topic",
            "official",
            "min_score",
            name="uq_mention_rules_rule",  # the conventional name is past PostgreSQL's 63 characters
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    destination_id: Mapped[int] = mapped_column(ForeignKey("destinations.id", ondelete="CASCADE"), index=True)
    target_kind: Mapped[str] = mapped_column(String(8))  # group | here
    target_id: Mapped[str] = mapped_column(String(64), default="")
    target_label: Mapped[str] = mapped_column(String(200), default="")  # "@analysts", for listings
    topic: Mapped[str] = mapped_column(String(64), default="")
    official: Mapped[bool] = mapped_column(Boolean, default=False)
    min_score: Mapped[float] = mapped_column(Float, default=0.0)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime]


class RoutingVersion(Base):
    """One row whose ``version`` database triggers bump on every change routing reads (channels'
    state and alert cap, subscriptions, keywords, mention rules): the router's cache key
    (migrations 0009 and 0011)."""

    __tablename__ = "routing_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)


# Delivery rows still to be sent; what they name must stay in the store (see retention).
OPEN_DELIVERY_STATES = ("pending", "sending")


class Delivery(Base):
    """The outbox: one row per (destination, cluster, kind), written before the platform call."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("destination_id", "cluster_id", "kind"),
        Index("ix_deliveries_due", "status", "next_attempt_at"),
        Index("ix_deliveries_cluster_id_kind", "cluster_id", "kind"),
        Index("ix_deliveries_kind_created_at", "kind", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    destination_id: Mapped[int] = mapped_column(ForeignKey("destinations.id", ondelete="CASCADE"))
    cluster_id: Mapped[int] = mapped_column(Integer)  # notices use a negative surrogate (see delivery code)
    story_id: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # alert | digest | followup | notice
    status: Mapped[str] = mapped_column(
        String(16), default="pending"
    )  # pending|sending|sent|failed|dropped|deferred
    batch: Mapped[str | None] = mapped_column(String(64), index=True)  # digest run key
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    platform_message_id: Mapped[str | None] = mapped_column(String(100))
    thread_id: Mapped[str | None] = mapped_column(String(100))
    error: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


class Feedback(Base):
    """A reader's judgement of an alert from chat: a labelled example for `frontierwatch train`."""

    __tablename__ = "feedback"
    __table_args__ = (UniqueConstraint("delivery_id", "user_id"),)  # a second click replaces the first

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"))
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"), index=True)
    platform: Mapped[str] = mapped_column(String(16))
    channel_id: Mapped[str] = mapped_column(String(100))
    user_id: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))  # not_relevant | wrong_topic
    alerted_topics: Mapped[list[str]] = mapped_column(JSON, default=list)  # what the alert said
    topics: Mapped[list[str]] = mapped_column(JSON, default=list)  # what the reader says instead
    created_at: Mapped[datetime]


class ReviewLabel(Base):
    """A story labelled in the web console's Review page: a labelled example for `frontierwatch
    train`, exported with the chat feedback (``frontierwatch feedback export``).

    A sibling of ``feedback`` rather than rows in it: a console label names no alert, channel or
    platform (``feedback.delivery_id`` is required), and keeping the two apart lets each say
    where it came from."""

    __tablename__ = "review_labels"
    __table_args__ = (UniqueConstraint("story_id", "labelled_by"),)  # a second label replaces the first

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"), index=True)
    labelled_by: Mapped[str] = mapped_column(String(200))  # the console user
    topics: Mapped[list[str]] = mapped_column(JSON, default=list)  # [] = none of the topics
    created_at: Mapped[datetime]


class SignInFailure(Base):
    """A wrong password typed into the web console's sign-in form, from one client address: the
    sign-in limit counts these rows, so every replica behind one address sees the same count.
    Rows older than the limit's window are deleted as new ones arrive."""

    __tablename__ = "sign_in_failures"
    __table_args__ = (Index("ix_sign_in_failures_address_at", "address", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(index=True)
