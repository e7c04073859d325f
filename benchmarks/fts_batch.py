#!/usr/bin/env python3
"""What SQLite's search index costs a message: indexed by a trigger in each send's
transaction (20 messages a transaction, as the database worker batches them under
load) against indexed afterwards in batches (chat.services.search.index_new_messages,
migration chat 0004). SQLite alone, no Django: WAL, synchronous=NORMAL, an FTS5
trigram table over a view of the messages, as the migration creates them.

    .venv/bin/python benchmarks/fts_batch.py
"""

import random
import sqlite3
import tempfile
import time
from pathlib import Path

MESSAGES = 20_000
PER_TRANSACTION = 20
COMMON = ["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog"]
WORDS = [f"w{i}" for i in range(3000)] + COMMON


def database(path: Path, *, trigger: bool) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE m (id INTEGER PRIMARY KEY AUTOINCREMENT, content TEXT)")
    db.execute("CREATE VIEW v AS SELECT id, content FROM m")
    db.execute(
        "CREATE VIRTUAL TABLE s USING fts5(content, content='v', content_rowid='id', "
        "tokenize='trigram')"
    )
    if trigger:
        db.execute(
            "CREATE TRIGGER t AFTER INSERT ON m BEGIN "
            "INSERT INTO s (rowid, content) VALUES (new.id, new.content); END"
        )
    return db


def send_all(db: sqlite3.Connection, rows: list[str]) -> float:
    started = time.perf_counter()
    for first in range(0, len(rows), PER_TRANSACTION):
        db.execute("BEGIN IMMEDIATE")
        for content in rows[first : first + PER_TRANSACTION]:
            db.execute("INSERT INTO m (content) VALUES (?)", (content,))
        db.execute("COMMIT")
    return time.perf_counter() - started


def index_in_batches(db: sqlite3.Connection, batch: int) -> float:
    started = time.perf_counter()
    for first in range(0, MESSAGES, batch):
        db.execute("BEGIN IMMEDIATE")
        db.execute(
            "INSERT INTO s (rowid, content) SELECT id, content FROM v WHERE id > ? AND id <= ?",
            (first, first + batch),
        )
        db.execute("COMMIT")
    return time.perf_counter() - started


def main() -> None:
    rng = random.Random(1)
    rows = [" ".join(rng.choices(WORDS, k=rng.randint(3, 15))) for _ in range(MESSAGES)]
    with tempfile.TemporaryDirectory() as tmp:
        db = database(Path(tmp) / "trigger.db", trigger=True)
        per_message = send_all(db, rows) / MESSAGES * 1e6
        print(f"trigger in each send's transaction: {per_message:.1f} us a message")
        for batch in (100, 1000):
            db = database(Path(tmp) / f"batch{batch}.db", trigger=False)
            sending = send_all(db, rows) / MESSAGES * 1e6
            indexing = index_in_batches(db, batch) / MESSAGES * 1e6
            print(
                f"no trigger: {sending:.1f} us a message to send, then {indexing:.1f} us "
                f"a message to index {batch} at a time"
            )


if __name__ == "__main__":
    main()
