"""The tables of Align, as SQLAlchemy 2 typed models.

Every user-visible object carries `workspace` and `channel`: visibility is enforced by always
filtering on both. Numbers (`D-12`) come from `Counter`, one row per workspace and kind, so they
are never reused even when rows are deleted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from storage.types import UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Json = JSON().with_variant(JSON(none_as_null=True), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Counter(Base):
    """Last number handed out per workspace and kind ("D", "I", "Q", "P")."""

    __tablename__ = "counters"
    workspace: Mapped[str] = mapped_column(String(120), primary_key=True)
    kind: Mapped[str] = mapped_column(String(4), primary_key=True)
    last: Mapped[int] = mapped_column(Integer, nullable=False)


class Channel(Base):
    """Per-channel settings: the time zone times are read in, and when its last digest went out."""

    __tablename__ = "channels"
    workspace: Mapped[str] = mapped_column(String(120), primary_key=True)
    channel: Mapped[str] = mapped_column(String(200), primary_key=True)
    tz: Mapped[str | None] = mapped_column(String(64))
    last_digest_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    platform: Mapped[str | None] = mapped_column(String(16))


class Member(Base):
    """People seen in a channel (or synced from the platform): who a poll's participation counts."""

    __tablename__ = "members"
    # Found only by its key: on SQLite the rows live in the key's b-tree alone (migration 0014).
    __table_args__ = {"sqlite_with_rowid": False}
    workspace: Mapped[str] = mapped_column(String(120), primary_key=True)
    channel: Mapped[str] = mapped_column(String(200), primary_key=True)
    user: Mapped[str] = mapped_column(String(120), primary_key=True)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class Profile(Base):
    """Cached facts about a person from their platform (name, time zone, admin), with expiry."""

    __tablename__ = "profiles"
    workspace: Mapped[str] = mapped_column(String(120), primary_key=True)
    user: Mapped[str] = mapped_column(String(120), primary_key=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    tz: Mapped[str | None] = mapped_column(String(64))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    alias: Mapped[str | None] = mapped_column(String(120))
    """Another id the platform gives the same person (Teams mention entities carry the `29:` id,
    Align keys people by their AAD object id)."""

    __table_args__ = (Index("ix_profiles_workspace_alias", "workspace", "alias"),)


class Roster(Base):
    """Who is in a channel, as the platform last listed them: shared by every process, so
    eligibility, reminders and frozen results never depend on which replica asked. `members` is
    NULL when the platform would not list them (then people seen in the channel count)."""

    __tablename__ = "rosters"
    workspace: Mapped[str] = mapped_column(String(120), primary_key=True)
    channel: Mapped[str] = mapped_column(String(200), primary_key=True)
    members: Mapped[Any] = mapped_column(Json, nullable=True)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class Decision(Base):
    __tablename__ = "decisions"
    __table_args__ = (UniqueConstraint("workspace", "number"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    workspace: Mapped[str] = mapped_column(String(120), nullable=False)
    channel: Mapped[str] = mapped_column(String(200), nullable=False)
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    title: Mapped[str] = mapped_column(Text, nullable=False)
    rationale: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    owner: Mapped[str | None] = mapped_column(String(120))
    created_by: Mapped[str] = mapped_column(String(120), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    superseded_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("decisions.id", ondelete="SET NULL")
    )
    question_id: Mapped[int | None] = mapped_column(ForeignKey("questions.id", ondelete="SET NULL"))
    poll_id: Mapped[int | None] = mapped_column(ForeignKey("polls.id", ondelete="SET NULL"))
    frozen_tally: Mapped[dict[str, Any] | None] = mapped_column(Json)
    rule: Mapped[str | None] = mapped_column(String(12))
    """How a proposal is accepted (`all`, `majority`, `consent`); NULL for a decision recorded
    without sign-off."""
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    review_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    signoff: Mapped[dict[str, Any] | None] = mapped_column(Json)
    """The sign-off as it stood when the proposal was settled (accepted or rejected, by its rule
    or by hand): how, by whom, when, and every stance — frozen like a poll's tally."""
    tags: Mapped[list[DecisionTag]] = relationship(
        cascade="all, delete-orphan", order_by="DecisionTag.tag", lazy="selectin"
    )

    __mapper_args__ = {"eager_defaults": False}


Index("ix_decisions_scope", Decision.workspace, Decision.channel, Decision.created_at)
Index("ix_decisions_due", Decision.status, Decision.due_at)
Index("ix_decisions_review", Decision.review_at)


class DecisionRole(Base):
    """Who a proposal involves, DACI/RACI-style: `approver` (their stance counts), `consulted`
    (asked for advice), `informed` (told when it is accepted). `target` is a person, or for
    `informed` also a channel (`target_kind`); `position` keeps the order they were named in."""

    __tablename__ = "decision_roles"
    decision_id: Mapped[int] = mapped_column(
        ForeignKey("decisions.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(12), primary_key=True)
    target: Mapped[str] = mapped_column(String(200), primary_key=True)
    target_kind: Mapped[str] = mapped_column(String(8), nullable=False, default="user")
    position: Mapped[int] = mapped_column(Integer, nullable=False)


Index("ix_decision_roles_target", DecisionRole.target, DecisionRole.role)


class Stance(Base):
    """A person's current stance on a proposal (the latest counts; every change is in the
    audit trail). Approvers' stances decide; anyone else's is shown as advice."""

    __tablename__ = "stances"
    decision_id: Mapped[int] = mapped_column(
        ForeignKey("decisions.id", ondelete="CASCADE"), primary_key=True
    )
    user: Mapped[str] = mapped_column(String(120), primary_key=True)
    stance: Mapped[str] = mapped_column(String(12), nullable=False)
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class Link(Base):
    """A link a person made between a decision and another object (`link D-7 I-3`), read both
    ways. Stored once, decision first (of two decisions, the older first)."""

    __tablename__ = "links"
    __table_args__ = (UniqueConstraint("from_kind", "from_id", "to_kind", "to_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    workspace: Mapped[str] = mapped_column(String(120), nullable=False)
    channel: Mapped[str] = mapped_column(String(200), nullable=False)
    from_kind: Mapped[str] = mapped_column(String(16), nullable=False)
    from_id: Mapped[int] = mapped_column(Integer, nullable=False)
    to_kind: Mapped[str] = mapped_column(String(16), nullable=False)
    to_id: Mapped[int] = mapped_column(Integer, nullable=False)
    created_by: Mapped[str] = mapped_column(String(120), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


Index("ix_links_to", Link.to_kind, Link.to_id)


class DecisionTag(Base):
    __tablename__ = "decision_tags"
    decision_id: Mapped[int] = mapped_column(
        ForeignKey("decisions.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)


class Item(Base):
    __tablename__ = "items"
    __table_args__ = (UniqueConstraint("workspace", "number"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    workspace: Mapped[str] = mapped_column(String(120), nullable=False)
    channel: Mapped[str] = mapped_column(String(200), nullable=False)
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    title: Mapped[str] = mapped_column(Text, nullable=False)
    lane: Mapped[str] = mapped_column(String(8), nullable=False)
    created_by: Mapped[str] = mapped_column(String(120), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    vote_poll_id: Mapped[int | None] = mapped_column(ForeignKey("polls.id", ondelete="SET NULL"))
    vote_rank: Mapped[int | None] = mapped_column(Integer)
    vote_score: Mapped[float | None] = mapped_column(Float)
    tags: Mapped[list[ItemTag]] = relationship(
        cascade="all, delete-orphan", order_by="ItemTag.tag", lazy="selectin"
    )
    scores: Mapped[list[ItemScore]] = relationship(
        cascade="all, delete-orphan", order_by="ItemScore.scorer", lazy="selectin"
    )


Index("ix_items_scope", Item.workspace, Item.channel, Item.lane)


class ItemTag(Base):
    __tablename__ = "item_tags"
    item_id: Mapped[int] = mapped_column(
        ForeignKey("items.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)


class ItemScore(Base):
    """One scorer's RICE inputs for one item; the item's score is the median of each input."""

    __tablename__ = "item_scores"
    item_id: Mapped[int] = mapped_column(
        ForeignKey("items.id", ondelete="CASCADE"), primary_key=True
    )
    scorer: Mapped[str] = mapped_column(String(120), primary_key=True)
    reach: Mapped[float | None] = mapped_column(Float)
    impact: Mapped[float | None] = mapped_column(Float)
    confidence: Mapped[float | None] = mapped_column(Float)
    effort: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class Question(Base):
    __tablename__ = "questions"
    __table_args__ = (UniqueConstraint("workspace", "number"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    workspace: Mapped[str] = mapped_column(String(120), nullable=False)
    channel: Mapped[str] = mapped_column(String(200), nullable=False)
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    owner: Mapped[str | None] = mapped_column(String(120))
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="open")
    answer: Mapped[str | None] = mapped_column(Text)
    answered_by: Mapped[str | None] = mapped_column(String(120))
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The decision recorded from this; no foreign key, as decisions point back here (a cycle).
    decision_id: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(120), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


Index("ix_questions_scope", Question.workspace, Question.channel, Question.status)


class PollSeries(Base):
    """A recurring poll (a pulse, `every:week`): one row per series, so stopping it (`edit P-n
    every:off`, from any poll of it) is one change. Period k opens at the first poll's local
    opening time moved k periods on in `tz`, and stays open as long as the first did, so
    daylight-saving changes never shift it; each period's poll points here with its index."""

    __tablename__ = "poll_series"
    id: Mapped[int] = mapped_column(primary_key=True)
    workspace: Mapped[str] = mapped_column(String(120), nullable=False)
    channel: Mapped[str] = mapped_column(String(200), nullable=False)
    every: Mapped[str] = mapped_column(String(8), nullable=False)
    tz: Mapped[str] = mapped_column(String(64), nullable=False)
    opens_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    closes_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    created_by: Mapped[str] = mapped_column(String(120), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    stopped_by: Mapped[str | None] = mapped_column(String(120))


class Poll(Base):
    __tablename__ = "polls"
    __table_args__ = (
        UniqueConstraint("workspace", "number"),
        UniqueConstraint("series_id", "series_index"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    workspace: Mapped[str] = mapped_column(String(120), nullable=False)
    channel: Mapped[str] = mapped_column(String(200), nullable=False)
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    question: Mapped[str] = mapped_column(Text, nullable=False)
    kind: Mapped[str] = mapped_column(String(12), nullable=False, default="poll")
    mode: Mapped[str] = mapped_column(String(8), nullable=False)
    budget: Mapped[int | None] = mapped_column(Integer)
    method: Mapped[str | None] = mapped_column(String(12))
    anonymous: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    public: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    """Everyone sees who chose what (the opposite of `anonymous`)."""
    results_hidden: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    """Nobody sees the tally until the poll closes (`results:hidden`)."""
    max_choices: Mapped[int | None] = mapped_column(Integer)
    """A multi poll's cap on choices per ballot (`max:N`)."""
    options_open: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    """Anyone in the channel may add an option (`options:open`)."""
    series_id: Mapped[int | None] = mapped_column(ForeignKey("poll_series.id", ondelete="SET NULL"))
    series_index: Mapped[int | None] = mapped_column(Integer)
    """The period of its series this poll is (0 for the first); the previous is index - 1."""
    closes_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_by: Mapped[str | None] = mapped_column(String(120))
    created_by: Mapped[str] = mapped_column(String(120), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    # The decision recorded from this; no foreign key, as decisions point back here (a cycle).
    decision_id: Mapped[int | None] = mapped_column(Integer)
    result: Mapped[dict[str, Any] | None] = mapped_column(Json)
    options: Mapped[list[PollOption]] = relationship(
        cascade="all, delete-orphan", order_by="PollOption.position", lazy="selectin"
    )
    series: Mapped[PollSeries | None] = relationship()


Index("ix_polls_scope", Poll.workspace, Poll.channel, Poll.closed_at)


class PollOption(Base):
    __tablename__ = "poll_options"
    __table_args__ = (UniqueConstraint("poll_id", "position"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    poll_id: Mapped[int] = mapped_column(ForeignKey("polls.id", ondelete="CASCADE"), nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id", ondelete="SET NULL"))


class Ballot(Base):
    """A voter's current ballot. `voter_key` is the user id, or for anonymous polls a keyed hash.

    The primary key is random and there is no timestamp, so nothing orders ballots against the
    participation rows of anonymous polls.
    """

    __tablename__ = "ballots"
    __table_args__ = (UniqueConstraint("poll_id", "voter_key"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    poll_id: Mapped[int] = mapped_column(ForeignKey("polls.id", ondelete="CASCADE"), nullable=False)
    voter_key: Mapped[str] = mapped_column(String(120), nullable=False)
    choice: Mapped[Any] = mapped_column(Json, nullable=False)
    reason: Mapped[str | None] = mapped_column(Text)
    """Why, in the voter's words (`vote P-1 2 | <reason>`): part of the ballot, stored under the
    same key (so an anonymous reason names nobody) and replaced with it."""


class PendingBallot(Base):
    """An anonymous ballot not yet counted (`bot/polls/batches.py`): written, sealed, in the
    vote's transaction beside its participation row, and moved into `ballots` — with at least
    four others, in shuffled order, in a transaction of its own — once five are waiting or the
    poll closes. `lookup` is a keyed hash of (poll, person) under a key other than the ballot's,
    so this row cannot be matched to the ballot it becomes; `sealed` holds the ballot key, the
    choice and the reason, padded to one size for every ballot."""

    __tablename__ = "pending_ballots"
    # On SQLite the rows live in the key's b-tree alone, with no rowid counting up in voting
    # order: one page less written per vote and per batch (migration 0014).
    __table_args__ = {"sqlite_with_rowid": False}
    poll_id: Mapped[int] = mapped_column(
        ForeignKey("polls.id", ondelete="CASCADE"), primary_key=True
    )
    lookup: Mapped[str] = mapped_column(String(64), primary_key=True)
    sealed: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


class PollTally(Base):
    """A poll's running tally, moved by each ballot change in the vote's own transaction so a vote
    costs the same in a poll of ten and of ten thousand (bot/polls/tallies.py). `scores` holds
    per option the marks (single, multi), the points (dots), or — ranked — how many ballots list
    the option; `pairwise` is a ranked poll's head-to-head matrix (row preferred over column).
    `version` counts every change, keying the cached count of methods that need the ballots.
    Derived data: a recount of `ballots` gives it back."""

    __tablename__ = "poll_tallies"
    poll_id: Mapped[int] = mapped_column(
        ForeignKey("polls.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    ballots: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    scores: Mapped[list[int]] = mapped_column(Json, nullable=False)
    pairwise: Mapped[list[list[int]] | None] = mapped_column(Json)


class PollCount(Base):
    """The last count of a poll whose method needs every ballot (instant runoff), with the
    tally version it counted: shared by every replica, and never served once a vote has moved
    the version on."""

    __tablename__ = "poll_counts"
    poll_id: Mapped[int] = mapped_column(
        ForeignKey("polls.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    tally: Mapped[dict[str, Any]] = mapped_column(Json, nullable=False)


class Participation(Base):
    """Who has voted in a poll, kept apart from ballots so non-voters can be nudged."""

    __tablename__ = "participation"
    poll_id: Mapped[int] = mapped_column(
        ForeignKey("polls.id", ondelete="CASCADE"), primary_key=True
    )
    user: Mapped[str] = mapped_column(String(120), primary_key=True)
    voted_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class Posting(Base):
    """Where an object's live message is shown on a platform (a poll with its buttons), so the
    message can be updated in place whenever the object changes. `object_kind` is the kind's noun
    (`poll`), `object_id` its row id."""

    __tablename__ = "postings"
    __table_args__ = (
        UniqueConstraint(
            "object_kind",
            "object_id",
            "platform",
            "conversation",
            "message_id",
            name="uq_postings_location",
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    object_kind: Mapped[str] = mapped_column(String(16), nullable=False)
    object_id: Mapped[int] = mapped_column(Integer, nullable=False)
    platform: Mapped[str] = mapped_column(String(16), nullable=False)
    conversation: Mapped[str] = mapped_column(String(300), nullable=False)
    message_id: Mapped[str] = mapped_column(String(120), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    # Keeping the message current, shared by every replica (adapters/postings.py): each change
    # of the object counts up `changes`; an update shows `changes` as it was when it began and
    # records it in `shown`, so the message is behind while changes > shown. One replica at a
    # time updates it (`held_by` until `held_until`), at most once per second
    # (`next_update_at`). `failures` counts the edits that failed in a row since the last one
    # that went out: each retry of a message the platform keeps refusing waits longer, so a
    # message that can never be edited again is not retried every few seconds for good.
    changes: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    shown: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    next_update_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    held_by: Mapped[str | None] = mapped_column(String(64))
    held_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failures: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")


class AuditEntry(Base):
    """Every change: who, when, what, before and after. `show` reads an object's history here."""

    __tablename__ = "audit"
    id: Mapped[int] = mapped_column(primary_key=True)
    workspace: Mapped[str] = mapped_column(String(120), nullable=False)
    channel: Mapped[str] = mapped_column(String(200), nullable=False)
    actor: Mapped[str] = mapped_column(String(120), nullable=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    action: Mapped[str] = mapped_column(String(32), nullable=False)
    object_kind: Mapped[str] = mapped_column(String(12), nullable=False)
    object_id: Mapped[int] = mapped_column(Integer, nullable=False)
    object_ref: Mapped[str] = mapped_column(String(16), nullable=False)
    before: Mapped[dict[str, Any] | None] = mapped_column(Json)
    after: Mapped[dict[str, Any] | None] = mapped_column(Json)


Index("ix_audit_object", AuditEntry.object_kind, AuditEntry.object_id)
Index("ix_audit_scope", AuditEntry.workspace, AuditEntry.channel, AuditEntry.at)


class OutboxMessage(Base):
    """A message that is not a direct reply, written with its cause and delivered later, once."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(primary_key=True)
    workspace: Mapped[str] = mapped_column(String(120), nullable=False)
    channel: Mapped[str] = mapped_column(String(300), nullable=False)
    platform: Mapped[str] = mapped_column(String(16), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(Json, nullable=False)
    idempotency_key: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    status: Mapped[str] = mapped_column(String(12), nullable=False, default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


Index("ix_outbox_due", OutboxMessage.status, OutboxMessage.next_attempt_at)
Index("ix_outbox_channel", OutboxMessage.workspace, OutboxMessage.channel, OutboxMessage.status)


class OutboxLane(Base):
    """One channel's queue of outbox messages (bot/outbox.py): which worker sends to it now and
    until when its hold lasts unless renewed, and when the next message may go (the platform's
    pace per channel) — in the database, so any number of replicas send to a channel one at a
    time, in order, at the platform's pace. Webhooks have no lane: receivers are independent."""

    __tablename__ = "outbox_lanes"
    platform: Mapped[str] = mapped_column(String(16), primary_key=True)
    workspace: Mapped[str] = mapped_column(String(120), primary_key=True)
    channel: Mapped[str] = mapped_column(String(300), primary_key=True)
    held_by: Mapped[str | None] = mapped_column(String(64))
    held_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    next_slot_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Schedule(Base):
    """A channel's weekly digest: local day and time in a named zone, so DST never shifts it."""

    __tablename__ = "schedules"
    __table_args__ = (UniqueConstraint("workspace", "channel", "kind"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    workspace: Mapped[str] = mapped_column(String(120), nullable=False)
    channel: Mapped[str] = mapped_column(String(200), nullable=False)
    platform: Mapped[str] = mapped_column(String(16), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    weekday: Mapped[int] = mapped_column(Integer, nullable=False)
    at_time: Mapped[str] = mapped_column(String(5), nullable=False)
    tz: Mapped[str] = mapped_column(String(64), nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    created_by: Mapped[str] = mapped_column(String(120), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class ScheduleRun(Base):
    """The claim on one (channel, job, period): the unique key makes a run happen once."""

    __tablename__ = "schedule_runs"
    __table_args__ = (UniqueConstraint("workspace", "channel", "job", "period"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    workspace: Mapped[str] = mapped_column(String(120), nullable=False)
    channel: Mapped[str] = mapped_column(String(200), nullable=False)
    job: Mapped[str] = mapped_column(String(32), nullable=False)
    period: Mapped[str] = mapped_column(String(64), nullable=False)
    status: Mapped[str] = mapped_column(String(12), nullable=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    note: Mapped[str | None] = mapped_column(Text)


class Webhook(Base):
    __tablename__ = "webhooks"
    __table_args__ = (UniqueConstraint("workspace", "channel", "number"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    workspace: Mapped[str] = mapped_column(String(120), nullable=False)
    channel: Mapped[str] = mapped_column(String(200), nullable=False)
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    url: Mapped[str] = mapped_column(Text, nullable=False)
    events: Mapped[str] = mapped_column(String(120), nullable=False)
    created_by: Mapped[str] = mapped_column(String(120), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # With ALIGN_SECRET, derives the webhook's own signing secret (bot/webhooks.py); NULL for
    # webhooks added before 0004_webhook_secrets, which stay signed with ALIGN_SECRET until rotated.
    key_salt: Mapped[str | None] = mapped_column(String(64))


class ConversationRef(Base):
    """How to reach a conversation later (Teams ConversationReference, Slack channel + team)."""

    __tablename__ = "conversation_refs"
    workspace: Mapped[str] = mapped_column(String(120), primary_key=True)
    channel: Mapped[str] = mapped_column(String(300), primary_key=True)
    platform: Mapped[str] = mapped_column(String(16), nullable=False)
    reference: Mapped[dict[str, Any]] = mapped_column(Json, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class ProcessedEvent(Base):
    """Platform event ids already handled, so a retried delivery does nothing twice. Written
    before migration 0007 (the `inbox` replaced it); no longer written, pruned by the worker."""

    __tablename__ = "processed_events"
    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    platform: Mapped[str] = mapped_column(String(16), nullable=False)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class InboxEntry(Base):
    """A request a platform sent — a command, a click, a form, an event — recorded before it was
    acknowledged, and worked from here (`adapters/inbox.py`): `received` (claimed by the process
    that took it, until `claimed_until`), `answered` (the engine ran; its reply is in `answer`,
    committed with the command's effects), `done`, or `failed` (given up after repeated crashes).

    `dedupe_key` is the platform's own id of the request (Slack `trigger_id` / `event_id`, a
    Teams activity id) so a retry or a replay finds the row. `payload` and `answer` are sealed
    (encrypted) and cleared once done: a click in an anonymous poll names the voter and the
    choice."""

    __tablename__ = "inbox"
    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(16), nullable=False)
    dedupe_key: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    status: Mapped[str] = mapped_column(String(12), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    payload: Mapped[str | None] = mapped_column(Text)
    answer: Mapped[str | None] = mapped_column(Text)


Index("ix_inbox_unfinished", InboxEntry.status, InboxEntry.claimed_until)
Index("ix_inbox_received_at", InboxEntry.received_at)


class SecretFingerprint(Base):
    """A keyed fingerprint of the ALIGN_SECRET this database is used with (storage/secret_check.py),
    stored by the first `align serve` and compared by every one after it: one process with
    another secret would seal what the others cannot open. One row, `name` "ALIGN_SECRET"."""

    __tablename__ = "secret_fingerprints"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    stored_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
