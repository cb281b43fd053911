"""Signals about a run or a chat that other parts of the system act on: "its event log grew", "it halted" and "the
chat has a new message".

A signal is raised inside the transaction that causes it and delivered only once that transaction commits. In this
process it goes to the process's SignalHub: the notifier (open streams) and the running-task registry (tool calls to
stop). On PostgreSQL it is also sent with NOTIFY, and every Runwire process LISTENs, so a stream served by one process
wakes for a run executing in another, and a cancel received by an API process stops the tool call in a worker.
A signal names its run and its chat (either may be absent), so that a run's streams and its chat's stream both wake.
"""

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

import psycopg
import sqlalchemy as sa
from sqlalchemy.orm import Session

from runwire.db import call_after_commit
from runwire.driver import DriverTransaction
from runwire.runs.cancellation import RunningTasks
from runwire.runs.notifier import RunNotifier

log = logging.getLogger("runwire.signals")

CHANNEL = "runwire_runs"
RECONNECT_SECONDS = 1.0
# The key under which a Database's sessions carry the SignalHub of their process (see Database's session_info).
HUB_KEY = "runwire_signal_hub"


class Signal(StrEnum):
    EVENTS = "events"
    # The run ended with steps unfinished (cancelled, or failed fast): its tool calls must stop.
    HALTED = "halted"
    # A run was queued, or one ended (its chat's next may start): executors look at the run queue now.
    QUEUE_CHANGED = "queue"
    # The chat has a new message that no run event came with.
    MESSAGE = "message"
    # `runwire tools refresh`: every process lists its MCP servers' tools again.
    TOOLS = "tools"


def chat_key(chat_id: str) -> str:
    """The notifier key a chat's streams wait on (a run's streams wait on the run's id)."""
    return f"chat:{chat_id}"


@dataclass
class SignalHub:
    """Where this process's signals land: the open streams' notifier, the running tool calls, and (in a process
    that executes runs) the executor's queue, which otherwise looks for work only every polling interval."""

    notifier: RunNotifier = field(default_factory=RunNotifier)
    running_tasks: RunningTasks = field(default_factory=RunningTasks)
    wake_queue: Callable[[], None] | None = None
    refresh_tools: Callable[[], None] | None = None

    def deliver(self, signal: Signal, run_id: str, chat_id: str = "") -> None:
        if signal is Signal.QUEUE_CHANGED:
            if self.wake_queue is not None:
                self.wake_queue()
            return
        if signal is Signal.TOOLS:
            if self.refresh_tools is not None:
                self.refresh_tools()
            return
        if signal is Signal.HALTED and run_id:
            self.running_tasks.cancel(run_id)
        if run_id:
            self.notifier.notify(run_id)
        if chat_id:
            self.notifier.notify(chat_key(chat_id))


_NOTIFY = sa.select(sa.func.pg_notify(sa.literal(CHANNEL), sa.bindparam("payload", type_=sa.String())))


def raise_signal(
    signal: Signal, run_id: uuid.UUID | None, *, chat_id: uuid.UUID | None = None, session: Session
) -> None:
    """Deliver `signal` once the session's transaction commits; raising it again in that transaction is a no-op."""
    run_text, chat_text = str(run_id or ""), str(chat_id or "")
    hub: SignalHub | None = session.info.get(HUB_KEY)
    key = (CHANNEL, signal, run_text, chat_text)
    if hub is not None and not call_after_commit(session, key, lambda: hub.deliver(signal, run_text, chat_text)):
        return
    if session.get_bind().dialect.name == "postgresql":
        payload = f"{signal.value}:{run_text}:{chat_text}"
        DriverTransaction(session.connection()).execute(_NOTIFY, {"payload": payload})


def _parse(payload: str) -> tuple[Signal, str, str] | None:
    """`kind:run:chat` (processes of an earlier release send `kind:run`)."""
    kind, _, rest = payload.partition(":")
    run_id, _, chat_id = rest.partition(":")
    try:
        return Signal(kind), run_id, chat_id
    except ValueError:
        return None


class SignalListener:
    """A thread that LISTENs on PostgreSQL and delivers other processes' signals here (ours arrive twice: harmless,
    a stream re-reads by sequence and a cancelled task stays cancelled)."""

    def __init__(self, conninfo: str, hub: SignalHub) -> None:
        self._conninfo = conninfo
        self._hub = hub
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
            self._hub.notifier.notify_all()
            while not self._stopping.is_set():
                for notification in connection.notifies(timeout=0.5):
                    parsed = _parse(notification.payload)
                    if parsed is not None:
                        self._hub.deliver(*parsed)


def listener_for(database_url: str, hub: SignalHub) -> SignalListener | None:
    """A listener for a PostgreSQL database URL; None for SQLite, which serves one process."""
    url = sa.make_url(database_url)
    if not url.drivername.startswith("postgresql"):
        return None
    return SignalListener(url.set(drivername="postgresql").render_as_string(hide_password=False), hub)
