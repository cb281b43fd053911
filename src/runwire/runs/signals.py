"""Signals about a run that other parts of the system act on: "its event log grew" and "it was cancelled".

A signal is raised inside the transaction that causes it and delivered only once that transaction commits. In this
process it goes straight to the notifier (open streams) and the running-task registry (tool calls to stop). On
PostgreSQL it is also sent with NOTIFY, and every Runwire process LISTENs, so a stream served by one process wakes
for a run executing in another, and a cancel received by an API process stops the tool call in a worker.
"""

import logging
import threading
import uuid
from enum import StrEnum

import psycopg
import sqlalchemy as sa
from sqlalchemy.orm import Session

from runwire.db import call_after_commit
from runwire.runs.cancellation import running_tasks
from runwire.runs.events import notifier

log = logging.getLogger("runwire.signals")

CHANNEL = "runwire_runs"
RECONNECT_SECONDS = 1.0


class Signal(StrEnum):
    EVENTS = "events"
    CANCELLED = "cancelled"


def deliver(signal: Signal, run_id: str) -> None:
    """Act on a committed signal in this process."""
    if signal is Signal.CANCELLED:
        running_tasks.cancel(run_id)
    notifier.notify(run_id)


def raise_signal(signal: Signal, run_id: uuid.UUID, *, session: Session) -> None:
    """Deliver `signal` once the session's transaction commits; raising it again in that transaction is a no-op."""
    text = str(run_id)
    if not call_after_commit(session, (CHANNEL, signal, text), lambda: deliver(signal, text)):
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.select(sa.func.pg_notify(CHANNEL, f"{signal.value}:{text}")))


def _parse(payload: str) -> tuple[Signal, str] | None:
    kind, _, run_id = payload.partition(":")
    try:
        return Signal(kind), run_id
    except ValueError:
        return None


class SignalListener:
    """A thread that LISTENs on PostgreSQL and delivers other processes' signals here (ours arrive twice: harmless,
    a stream re-reads by sequence and a cancelled task stays cancelled)."""

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._stopping = threading.Event()
        self._listening = threading.Event()
        self._thread = threading.Thread(target=self._run, name="runwire-signal-listener", daemon=True)

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        if not self._listening.wait(timeout):
            log.warning("the signal listener is not listening yet; streams fall back to their periodic re-check")

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._listen()
            except psycopg.Error as exc:
                log.warning("signal listener lost its connection; reconnecting", extra={"error": str(exc)})
                self._stopping.wait(RECONNECT_SECONDS)

    def _listen(self) -> None:
        with psycopg.connect(self._conninfo, autocommit=True) as connection:
            connection.execute(f"LISTEN {CHANNEL}")
            self._listening.set()
            # Whatever was signalled while no one listened: every waiter re-reads.
            notifier.notify_all()
            while not self._stopping.is_set():
                for notification in connection.notifies(timeout=0.5):
                    parsed = _parse(notification.payload)
                    if parsed is not None:
                        deliver(*parsed)


def listener_for(database_url: str) -> SignalListener | None:
    """A listener for a PostgreSQL database URL; None for SQLite, which serves one process."""
    url = sa.make_url(database_url)
    if not url.drivername.startswith("postgresql"):
        return None
    return SignalListener(url.set(drivername="postgresql").render_as_string(hide_password=False))
