"""What memeswap keeps about people and communities, as SQLAlchemy 2 tables.

Deliberately little: a user is a platform and an id; a saved face is what a swap needs
(the aligned crop, its landmarks, an embedding where the analyser gives one), never the
photo it came from. Everything a user owns hangs off `users.id` with ON DELETE CASCADE or
SET NULL, so forgetting a user is one delete plus the audit log's anonymisation.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Stable constraint names, so migrations name the same thing on SQLite and PostgreSQL.
NAMING = {"ix": "ix_%(column_0_label)s", "uq": "uq_%(table_name)s_%(column_0_name)s",
          "ck": "ck_%(table_name)s_%(constraint_name)s", "fk": "fk_%(table_name)s_%(column_0_name)s",
          "pk": "pk_%(table_name)s"}


def utc_now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("platform", "platform_user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(20))
    platform_user_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class SavedFace(Base):
    __tablename__ = "saved_faces"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(32))
    crop_png: Mapped[bytes] = mapped_column(LargeBinary)  # the aligned face, not the photo
    landmarks: Mapped[bytes] = mapped_column(LargeBinary)  # float32 (N, 2) in crop pixels
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    analyser: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class CustomTemplate(Base):
    """A template a community or user added; its media and tracks live in the template
    library's folder for `scope_key`, this row is what makes it exist."""

    __tablename__ = "custom_templates"
    __table_args__ = (UniqueConstraint("scope_key", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope_key: Mapped[str] = mapped_column(String(100), index=True)  # "global", "discord-guild-1", ...
    name: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(100))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True,
                                                 index=True)
    media_sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    frame_count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class UsageEvent(Base):
    """One swap a user asked for, for quotas; old rows are pruned."""

    __tablename__ = "usage_events"
    __table_args__ = (Index("ix_usage_events_user_at", "user_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class ProtectedFaceEntry(Base):
    """A face that must never be swapped in or out, as a 128-number descriptor; the label is
    for operators and is never shown to users."""

    __tablename__ = "protected_faces"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope_key: Mapped[str] = mapped_column(String(100), index=True)
    label: Mapped[str] = mapped_column(String(100))
    descriptor: Mapped[bytes] = mapped_column(LargeBinary)
    descriptor_kind: Mapped[str] = mapped_column(String(32))
    added_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class AuditEntry(Base):
    """Who added or removed what. Forgetting a user keeps the entry (a community's history)
    but drops who it was."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True,
                                                 index=True)
    action: Mapped[str] = mapped_column(String(40))
    scope_key: Mapped[str] = mapped_column(String(100))
    subject: Mapped[str] = mapped_column(String(100))


class IssuedMeme(Base):
    """A swap job this bot started, so that a report of its meme names a real job: the
    template it used and the scope it ran in, never who asked, the selfie or the meme.
    Rows older than `reports.REPORTABLE_FOR` are pruned."""

    __tablename__ = "issued_memes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(String(64), unique=True)
    template: Mapped[str] = mapped_column(String(200))  # the job's template ref
    scope_key: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now, index=True)


class TemplateReport(Base):
    """Someone pressed "Report" under a meme: one row per reporter and job. Open until an
    admin or the operator decides ("hide" or "keep") for its template in its scope."""

    __tablename__ = "template_reports"
    __table_args__ = (UniqueConstraint("job_id", "reporter_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(String(64))
    template: Mapped[str] = mapped_column(String(200))
    scope_key: Mapped[str] = mapped_column(String(100), index=True)
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True,
                                                    index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    decision: Mapped[str | None] = mapped_column(String(10), nullable=True)  # None (open), "hide" or "keep"
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
