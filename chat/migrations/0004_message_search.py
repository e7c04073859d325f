"""Message search (issue 14): an index of the searchable messages' content, on each vendor.

Searchable: text messages (kinds Text and RichText; Image and File hold a URL) that
are not recalled. Matching is by substring, case-insensitively, in any script, so
both indexes are of trigrams (CJK text has no spaces between words):

- PostgreSQL: a GIN index of pg_trgm trigrams (`gin_trgm_ops`) over the content of
  the searchable rows (a partial index). PostgreSQL keeps it in step with every
  insert, edit, recall and delete itself.
- SQLite: an FTS5 table with the `trigram` tokenizer over the view of the searchable
  rows of chat_message (external content). New messages are indexed in batches
  (chat.services.search.index_new_messages: every second, and before each search):
  one FTS5 insert per message in the send's transaction cost ten times as much, a
  third of a send. chat_message_search_upto holds the newest id indexed; triggers on
  chat_message keep the rows up to it in step with edits, recalls and deletes (the
  rows after it are read from the view when they are indexed). A later migration
  that makes Django rebuild chat_message on SQLite (copy, drop, rename) drops these
  triggers: it must create them again (tests/test_search.py would fail).

Existing rows are indexed here: PostgreSQL builds the index over them, SQLite's FTS
table is rebuilt from the view. On PostgreSQL the indexes are built CONCURRENTLY, so
that sending goes on while they build on a large table; that cannot run in a
transaction, so this migration is not atomic (SQLite's steps run in one of their own).
A build that failed half way leaves an invalid index, dropped before the next try.
"""

import contextlib

from django.db import migrations, transaction

TEXT_KINDS = "('Text', 'RichText')"


def _searchable(row: str) -> str:
    return f"{row}.kind IN {TEXT_KINDS} AND NOT {row}.recalled"


POSTGRESQL = [
    # Trusted since PostgreSQL 13: the database owner may create it. Left in place when
    # this migration is reversed: other objects of the database may use it.
    ("CREATE EXTENSION IF NOT EXISTS pg_trgm", None),
    ("DROP INDEX CONCURRENTLY IF EXISTS chat_message_search", None),
    (
        "CREATE INDEX CONCURRENTLY chat_message_search ON chat_message "
        f"USING gin (content gin_trgm_ops) WHERE kind IN {TEXT_KINDS} AND NOT recalled",
        "DROP INDEX CONCURRENTLY IF EXISTS chat_message_search",
    ),
    # The planner chooses between the trigram index and walking the ids backwards by
    # how many messages it expects a word to match: sampled from 1000 values of
    # content rather than 100, it estimates a common word within a few per cent.
    (
        "ALTER TABLE chat_message ALTER COLUMN content SET STATISTICS 1000",
        "ALTER TABLE chat_message ALTER COLUMN content SET STATISTICS -1",
    ),
    ("ANALYZE chat_message", None),
    # The newest messages of a set of groups, read from the index alone (SQLite's index
    # on group_id holds the rowid, which is the id, already).
    ("DROP INDEX CONCURRENTLY IF EXISTS chat_message_group_newest", None),
    (
        "CREATE INDEX CONCURRENTLY chat_message_group_newest ON chat_message (group_id, id)",
        "DROP INDEX CONCURRENTLY IF EXISTS chat_message_group_newest",
    ),
]

# Only the rows indexed already: the others are read from the view when indexed.
_INDEXED = "{row}.id <= (SELECT upto FROM chat_message_search_upto)"
_FTS_ADD = "INSERT INTO chat_message_search (rowid, content) SELECT new.id, new.content WHERE {}"
_FTS_REMOVE = (
    "INSERT INTO chat_message_search (chat_message_search, rowid, content) "
    "SELECT 'delete', old.id, old.content WHERE {}"
)


def _indexed_and_searchable(row: str) -> str:
    return f"{_INDEXED.format(row=row)} AND {_searchable(row)}"


SQLITE = [
    # What the FTS table indexes, as a view: its 'rebuild' and 'integrity-check' then
    # agree with the triggers about which rows belong in the index.
    (
        "CREATE VIEW chat_message_searchable AS SELECT id, content FROM chat_message "
        f"WHERE {_searchable('chat_message')}",
        "DROP VIEW chat_message_searchable",
    ),
    (
        "CREATE VIRTUAL TABLE chat_message_search USING fts5(content, "
        "content='chat_message_searchable', content_rowid='id', tokenize='trigram')",
        "DROP TABLE chat_message_search",
    ),
    (
        "CREATE TABLE chat_message_search_upto (upto INTEGER NOT NULL)",
        "DROP TABLE chat_message_search_upto",
    ),
    (
        "INSERT INTO chat_message_search_upto (upto) SELECT COALESCE(MAX(id), 0) "
        "FROM chat_message",
        None,
    ),
    ("INSERT INTO chat_message_search (chat_message_search) VALUES ('rebuild')", None),
    (
        # An edit replaces the content, a recall erases it: the old text leaves the index.
        "CREATE TRIGGER chat_message_search_update "
        "AFTER UPDATE OF content, recalled, kind ON chat_message BEGIN "
        f"{_FTS_REMOVE.format(_indexed_and_searchable('old'))}; "
        f"{_FTS_ADD.format(_indexed_and_searchable('new'))}; END",
        "DROP TRIGGER chat_message_search_update",
    ),
    (
        "CREATE TRIGGER chat_message_search_delete AFTER DELETE ON chat_message BEGIN "
        f"{_FTS_REMOVE.format(_indexed_and_searchable('old'))}; END",
        "DROP TRIGGER chat_message_search_delete",
    ),
]


VENDORS = {"postgresql": POSTGRESQL, "sqlite": SQLITE}


def _apply(schema_editor, *, forward: bool) -> None:
    connection = schema_editor.connection
    statements = VENDORS[connection.vendor]
    # PostgreSQL's CONCURRENTLY needs autocommit; SQLite's steps stand or fall together.
    together = connection.vendor == "sqlite"
    with transaction.atomic(using=connection.alias) if together else contextlib.nullcontext():
        for sql, reverse_sql in statements if forward else reversed(statements):
            chosen = sql if forward else reverse_sql
            if chosen:
                schema_editor.execute(chosen)


def create_search_index(apps, schema_editor):
    _apply(schema_editor, forward=True)


def drop_search_index(apps, schema_editor):
    _apply(schema_editor, forward=False)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("chat", "0003_message_file"),
    ]

    operations = [
        migrations.RunPython(create_search_index, drop_search_index, elidable=False),
    ]
