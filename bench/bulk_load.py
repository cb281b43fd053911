"""Rows written straight into a stopped server's SQLite file (`<data dir>/runwire.db`), in its real schema.

Runs are cloned from runs the engine really executed (made through the API): every column as stored, with a new
run id, the target chat and the next `chat_seq` of that chat. Events (`run_event`) are not cloned: the run list
never reads them.
"""

import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BATCH_RUNS = 20_000


@dataclass(frozen=True)
class TemplateRun:
    run: tuple[Any, ...]  # a workflow_run row, in the table's column order
    steps: list[tuple[Any, ...]]  # its step_run rows


def _hex(uuid_text: str) -> str:
    """The form the schema stores a UUID in (sa.Uuid on SQLite: 32 hex digits)."""
    return uuid.UUID(uuid_text).hex


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def _connect(database: Path) -> sqlite3.Connection:
    if not database.exists():
        raise RuntimeError(f"no database at {database}")
    conn = sqlite3.connect(database, isolation_level=None)
    # The file is a throwaway benchmark copy: speed over durability while the server is stopped.
    for pragma in ("synchronous=OFF", "cache_size=-4000000", "temp_store=MEMORY", "foreign_keys=OFF"):
        conn.execute(f"PRAGMA {pragma}")
    return conn


class BulkLoader:
    """Chats and cloned runs for one data dir; use it while no server has the file open."""

    def __init__(self, data_dir: Path) -> None:
        self.conn = _connect(data_dir / "runwire.db")
        self.run_columns = _columns(self.conn, "workflow_run")
        self.step_columns = _columns(self.conn, "step_run")

    def close(self) -> None:
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.conn.close()

    def templates(self, chat_id: str) -> list[TemplateRun]:
        """The chat's runs, in order, with their steps: what clones copy."""
        runs = self.conn.execute(
            "SELECT * FROM workflow_run WHERE chat_id = ? ORDER BY chat_seq", (_hex(chat_id),)
        ).fetchall()
        if not runs:
            raise RuntimeError(f"chat {chat_id} has no runs to clone")
        run_id = self.run_columns.index("id")
        with closing(self.conn.cursor()) as cursor:
            return [
                TemplateRun(run, cursor.execute("SELECT * FROM step_run WHERE run_id = ?", (run[run_id],)).fetchall())
                for run in runs
            ]

    def run_count(self) -> int:
        count: int = self.conn.execute("SELECT count(*) FROM workflow_run").fetchone()[0]
        return count

    def chat_owner(self, chat_id: str) -> str:
        row = self.conn.execute("SELECT user_id FROM chat WHERE id = ?", (_hex(chat_id),)).fetchone()
        if row is None:
            raise RuntimeError(f"no chat {chat_id}")
        return str(row[0])

    def add_chats(self, user_id: str, count: int, title: str) -> list[str]:
        """`count` new live chats of the user (ids as the API shows them)."""
        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        ids = [uuid.uuid4() for _ in range(count)]
        columns = _columns(self.conn, "chat")
        values = {
            "user_id": user_id,
            "title": title,
            "created_at": now,
            "updated_at": now,
            "deleted_at": None,
            "last_event_seq": 0,
            "workflow_id": None,
        }
        rows = ([chat.hex if name == "id" else values[name] for name in columns] for chat in ids)
        self._insert("chat", columns, rows)
        return [str(chat) for chat in ids]

    def add_runs(self, templates: Sequence[TemplateRun], chat_ids: Sequence[str], runs_per_chat: int) -> int:
        """`runs_per_chat` clones of `templates` (cycled) appended to each chat; returns the runs written."""
        written = 0
        for start in range(0, len(chat_ids), max(1, BATCH_RUNS // runs_per_chat)):
            batch = chat_ids[start : start + max(1, BATCH_RUNS // runs_per_chat)]
            runs: list[tuple[Any, ...]] = []
            steps: list[tuple[Any, ...]] = []
            for chat_id in batch:
                self._clone_into(chat_id, templates, runs_per_chat, runs, steps)
            # Key order: the random ids then land in the index pages one after another, not all over the file.
            runs.sort(key=lambda row: row[self.run_columns.index("id")])
            steps.sort(key=lambda row: row[self.step_columns.index("run_id")])
            self.conn.execute("BEGIN")
            self._insert("workflow_run", self.run_columns, runs)
            self._insert("step_run", self.step_columns, steps)
            self.conn.execute("COMMIT")
            written += len(runs)
        return written

    def _clone_into(
        self,
        chat_id: str,
        templates: Sequence[TemplateRun],
        count: int,
        runs: list[tuple[Any, ...]],
        steps: list[tuple[Any, ...]],
    ) -> None:
        chat = _hex(chat_id)
        # New runs are a change to the chat's list: its version grows, as run creation makes it.
        self.conn.execute("UPDATE chat SET last_event_seq = last_event_seq + 1 WHERE id = ?", (chat,))
        last = self.conn.execute("SELECT MAX(chat_seq) FROM workflow_run WHERE chat_id = ?", (chat,)).fetchone()[0]
        id_at, chat_at, seq_at = (self.run_columns.index(name) for name in ("id", "chat_id", "chat_seq"))
        step_run_at = self.step_columns.index("run_id")
        for seq, template in zip(range((last or 0) + 1, (last or 0) + 1 + count), _cycle(templates), strict=False):
            run = list(template.run)
            run[id_at], run[chat_at], run[seq_at] = uuid.uuid4().hex, chat, seq
            runs.append(tuple(run))
            steps.extend(_with(step, step_run_at, run[id_at]) for step in template.steps)

    def _insert(self, table: str, columns: list[str], rows: Iterator[list[Any]] | list[tuple[Any, ...]]) -> None:
        marks = ", ".join("?" * len(columns))
        self.conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)


def _cycle(templates: Sequence[TemplateRun]) -> Iterator[TemplateRun]:
    while True:
        yield from templates


def _with(row: tuple[Any, ...], index: int, value: Any) -> tuple[Any, ...]:
    return (*row[:index], value, *row[index + 1 :])
