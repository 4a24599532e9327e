"""Events on disk until the broker has acknowledged them: SQLite in WAL mode, bounded, oldest dropped first.

The daemon's audio thread writes (`put`), the MQTT thread reads and removes; each opens its own Spool on
the same file, which WAL lets them do without blocking each other. A commit is fsynced before `put`
returns, so an event the detector produced survives a crash or a power cut from then on.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from .errors import SoundsentryError

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL,
                                   payload TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class Spool:
    """`seq = spool.put(topic, payload)`; `spool.after(seq)` in order; `spool.remove(seq)` once delivered."""

    def __init__(self, path: str | Path, max_items: int = 10000) -> None:
        self.path, self.max_items = Path(path), max_items
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise SoundsentryError(f"{self.path}: not a usable spool database ({exc}); move it aside") from None
        except OSError as exc:
            raise SoundsentryError(f"{self.path.parent}: cannot create the state directory ({exc.strerror})") from None

    def put(self, topic: str, payload: str) -> int:
        """Store one message; beyond `max_items` the oldest are deleted and counted as dropped."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            seq = self._db.execute("INSERT INTO events (topic, payload, created) VALUES (?, ?, ?)",
                                   (topic, payload, time.time())).lastrowid
            excess = self.depth() - self.max_items
            if excess > 0:
                self._db.execute("DELETE FROM events WHERE seq IN (SELECT seq FROM events ORDER BY seq LIMIT ?)",
                                 (excess,))
                self._db.execute("INSERT INTO meta VALUES ('dropped', ?) ON CONFLICT(key) DO UPDATE "
                                 "SET value = CAST(value AS INTEGER) + ?", (excess, excess))
        return seq

    def after(self, seq: int, limit: int) -> list[tuple[int, str, str]]:
        """Up to `limit` messages with a sequence number above `seq`, oldest first."""
        return self._db.execute("SELECT seq, topic, payload FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                                (seq, limit)).fetchall()

    def remove(self, seq: int) -> None:
        self._db.execute("DELETE FROM events WHERE seq = ?", (seq,))

    def depth(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0]

    @property
    def dropped(self) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'dropped'").fetchone()
        return int(row[0]) if row else 0

    def get_meta(self, key: str, default: str = "") -> str:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                         (key, value))

    def close(self) -> None:
        self._db.close()
