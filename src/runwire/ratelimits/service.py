"""Rate limits counted in the database, so that every process on one database shares them.

Sliding windows, approximated from two fixed ones: a subject's hits under a rule are counted per window aligned to
the epoch (a 60 s rule counts from :00 to :00), in one row incremented by a single upsert (`INSERT ... ON CONFLICT
DO UPDATE ... RETURNING`), which both SQLite and PostgreSQL apply atomically however many processes hit the row.
A request is weighed against the current window's hits plus the previous window's, scaled by the share of the
previous window that still lies within one window of now. Unlike a fixed window, this never lets twice a limit
through across a window's edge. The `limits` library was considered: its strategies (this one among them) work
through storages for memory, Redis, Memcached, MongoDB and etcd, and none speaks SQL.

A request's hits are counted before its work and kept whatever it answers. A refusal is decided on the count the
upsert returned, so simultaneous requests can never get more than the limit through.
"""

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from runwire.config import Settings
from runwire.db import Database
from runwire.errors import RateLimited
from runwire.ratelimits.models import RateLimitCounter

# Expired windows deleted at most per new window counted: purging keeps pace with creating.
PURGE_BATCH = 100


@dataclass(frozen=True)
class Rule:
    name: str
    limit: int
    window_seconds: int

    @property
    def enabled(self) -> bool:
        return self.limit > 0


@dataclass(frozen=True)
class Rules:
    sign_in_email: Rule
    sign_in_address: Rule
    sign_up_address: Rule
    start_work: Rule
    writes: Rule
    reads: Rule

    @classmethod
    def from_settings(cls, settings: Settings) -> "Rules":
        return cls(
            sign_in_email=Rule(
                "sign-in-email", settings.rate_limit_sign_in_per_email, settings.rate_limit_sign_in_window_seconds
            ),
            sign_in_address=Rule(
                "sign-in-address", settings.rate_limit_sign_in_per_address, settings.rate_limit_sign_in_window_seconds
            ),
            sign_up_address=Rule(
                "sign-up-address", settings.rate_limit_sign_ups_per_address, settings.rate_limit_sign_up_window_seconds
            ),
            start_work=Rule("start-work", settings.rate_limit_starts_per_minute, 60),
            writes=Rule("writes", settings.rate_limit_writes_per_minute, 60),
            reads=Rule("reads", settings.rate_limit_reads_per_minute, 60),
        )


@dataclass(frozen=True)
class Charge:
    """One hit of `subject` (an email, an address, a user id) under `rule` at `at` (seconds since the epoch)."""

    rule: Rule
    subject: str
    at: float


def _window_end(charge: Charge) -> int:
    window = charge.rule.window_seconds
    return (int(charge.at) // window + 1) * window


def _subject_key(subject: str) -> str:
    return hashlib.sha256(subject.encode()).hexdigest()


def _counter(charge: Charge) -> dict[str, Any]:
    return {"rule": charge.rule.name, "subject": _subject_key(charge.subject), "window_end": _window_end(charge)}


def _upsert(dialect: str, charge: Charge) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(RateLimitCounter).values(**_counter(charge), hits=1)
    return statement.on_conflict_do_update(
        index_elements=["rule", "subject", "window_end"], set_={"hits": RateLimitCounter.hits + 1}
    ).returning(RateLimitCounter.hits)


def _previous_hits(charge: Charge, *, session: Session) -> int:
    counter = _counter(charge)
    hits = session.scalar(
        sa.select(RateLimitCounter.hits).where(
            RateLimitCounter.rule == counter["rule"],
            RateLimitCounter.subject == counter["subject"],
            RateLimitCounter.window_end == counter["window_end"] - charge.rule.window_seconds,
        )
    )
    return hits or 0


def retry_after(rule: Rule, *, previous: int, current: int, elapsed: float) -> int:
    """Seconds until one more hit would be allowed, or 0 when it is now, for a window `elapsed` seconds in that
    holds `current` hits after one that held `previous`."""
    window, limit = rule.window_seconds, rule.limit
    if previous * (1 - elapsed / window) + current <= limit:
        return 0
    if current < limit:
        # Within this window, once enough of the previous one has slid out.
        wait = window * (1 - (limit - current - 1) / previous) - elapsed
    else:
        # Only after this window ends, once enough of it has slid out in turn.
        wait = window - elapsed + window * (1 - (limit - 1) / current)
    return max(1, math.ceil(wait))


def count(charges: Sequence[Charge], *, session: Session) -> int:
    """Count every enabled charge; the seconds until every refusing rule allows a hit again, or 0 when all allow."""
    dialect = session.get_bind().dialect.name
    wait = 0
    for charge in charges:
        rule = charge.rule
        if not rule.enabled:
            continue
        current: int = session.execute(_upsert(dialect, charge)).scalar_one()
        if current == 1:
            _purge(rule, charge.at, session=session)
        previous = _previous_hits(charge, session=session)
        elapsed = charge.at - (_window_end(charge) - rule.window_seconds)
        # This hit is already in `current`: it is allowed when the weighed count, with it, stays within the limit.
        if previous * (1 - elapsed / rule.window_seconds) + current > rule.limit:
            wait = max(wait, retry_after(rule, previous=previous, current=current, elapsed=elapsed))
    return wait


def _purge(rule: Rule, now: float, *, session: Session) -> None:
    # A window counts until one window after its end. SKIP LOCKED (PostgreSQL; SQLite has one writer): purges
    # running at once share the work instead of waiting for, or deadlocking on, each other's rows.
    key = sa.tuple_(RateLimitCounter.rule, RateLimitCounter.subject, RateLimitCounter.window_end)
    expired = (
        sa.select(RateLimitCounter.rule, RateLimitCounter.subject, RateLimitCounter.window_end)
        .where(RateLimitCounter.rule == rule.name, RateLimitCounter.window_end <= int(now) - rule.window_seconds)
        .limit(PURGE_BATCH)
        .with_for_update(skip_locked=True)
    )
    session.execute(sa.delete(RateLimitCounter).where(key.in_(expired)).execution_options(synchronize_session=False))


def give_back(charges: Sequence[Charge], *, session: Session) -> None:
    """Uncount charges that turned out not to count (a sign-in that succeeded)."""
    for charge in charges:
        if not charge.rule.enabled:
            continue
        counter = _counter(charge)
        session.execute(
            sa.update(RateLimitCounter)
            .where(
                RateLimitCounter.rule == counter["rule"],
                RateLimitCounter.subject == counter["subject"],
                RateLimitCounter.window_end == counter["window_end"],
                RateLimitCounter.hits > 0,
            )
            .values(hits=RateLimitCounter.hits - 1)
            .execution_options(synchronize_session=False)
        )


def enforce(database: Database, charges: Sequence[Charge]) -> None:
    """Count `charges` in a transaction of their own, committed before the caller goes on, and raise RateLimited
    when a limit is exceeded: a refused request's hits are kept whatever happens to the request."""
    with database.writing() as session:
        retry_after = count(charges, session=session)
    if retry_after:
        raise RateLimited(retry_after)
