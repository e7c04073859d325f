"""Message search (PROTOCOL.md §6.3): the caller's text messages that contain every word
of a query, best match first, never a recalled one, with where the words occur.

A word matches anywhere in a message, case-insensitively, in any script: CJK text has
no spaces between its words, so the index is of trigrams, not of words (migration
chat 0004: pg_trgm's GIN index on PostgreSQL, an FTS5 `trigram` table on SQLite).

Which messages: those of the caller's groups as the database has them now (or of the
one group `gid`, which the caller must be a member of). The work of a query is
bounded however common its words and however many messages the caller can read:

- the *scan*: when the groups hold at most RIM_SEARCH_SCAN messages, or every word is
  shorter than a trigram (the index cannot look those up), the newest RIM_SEARCH_SCAN
  messages of the groups are read and matched;
- the *index*: otherwise the trigram index finds the matches, newest first, and the
  groups filter them.

Either way the newest RIM_SEARCH_DEPTH matches are ranked, ties newest first, and
paged. PostgreSQL ranks by trigram `similarity` to the query. SQLite ranks by BM25:
FTS5's `bm25()` on the index; on the scan, the same formula over each word's count
and the message's length (FTS5 would count a common word's rows over the whole
table for each message to give its `bm25()` there).

Four queries whatever the page size: the groups, the ranked page, its messages with
their senders and groups, their reactions. On SQLite, two more before them: the
messages stored since the index was last brought up to date are indexed first
(index_new_messages, which otherwise runs every RIM_SEARCH_INDEX_INTERVAL seconds).
"""

import re
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction

from accounts.models import User
from chat.models import Membership, Message
from chat.services.access import access_group
from chat.services.reading import ChatEntry, reactions_of

MAX_QUERY = 200
# Ranges returned per message: a 64 KiB message of one letter repeated must not
# answer a one-letter query with a megabyte of offsets.
MAX_MATCHES = 1000
# The searchable rows, in the words of the index's definition (a partial index on
# PostgreSQL serves only a query that repeats its condition).
SEARCHABLE = "m.kind IN ('Text', 'RichText') AND NOT m.recalled"
# Words shorter than a trigram cannot be looked up in the index.
TRIGRAM = 3
# BM25's usual constants: how fast repeating a word stops adding to a match, and how
# much a message's length counts against it.
BM25_K1, BM25_B = 1.2, 0.75


# SQLite (migration chat 0004): index the searchable messages after the newest indexed
# id, up to `limit` ids further (or all), and record how far the index now goes.
_INDEX_NEW = (
    "INSERT INTO chat_message_search (rowid, content) SELECT id, content "
    "FROM chat_message_searchable WHERE id > (SELECT upto FROM chat_message_search_upto) "
    "AND id <= (SELECT upto FROM chat_message_search_upto) + %s"
)
_INDEXED_UPTO = (
    "UPDATE chat_message_search_upto SET upto = "
    "MIN(upto + %s, (SELECT COALESCE(MAX(id), 0) FROM chat_message)) "
    "WHERE upto < (SELECT COALESCE(MAX(id), 0) FROM chat_message)"
)


def index_new_messages(*, limit: int | None = None) -> bool:
    """SQLite: add the messages stored since the last call to the search index, at most
    `limit` ids of them (None: all); True if the index moved. PostgreSQL indexes each
    row as it is written: nothing to do there."""
    if connection.vendor != "sqlite":
        return False
    span = limit if limit is not None else 2**62
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_INDEX_NEW, [span])
        cursor.execute(_INDEXED_UPTO, [span])
        return cursor.rowcount == 1


@dataclass(frozen=True)
class SearchResult:
    """A found message as history returns it, and the [start, end) character offsets
    of the query's words in its content."""

    entry: ChatEntry
    matches: list[tuple[int, int]]


@dataclass(frozen=True)
class Scope:
    """What one search covers."""

    terms: list[str]
    user_id: int
    gid: int | None  # None: all the user's groups
    gids: list[int]
    messages: int  # how many messages the groups hold, recalled and images included
    scan: int
    depth: int

    @property
    def indexed(self) -> list[str]:
        return [t for t in self.terms if len(t) >= TRIGRAM]

    @property
    def short(self) -> list[str]:
        return [t for t in self.terms if len(t) < TRIGRAM]

    @property
    def through_index(self) -> bool:
        return bool(self.indexed) and self.messages > self.scan


def search_terms(q: str) -> list[str]:
    """The words of a query (split on whitespace), each once, whatever its case."""
    words: dict[str, str] = {}
    for word in q.split():
        words.setdefault(word.casefold(), word)
    return list(words.values())


def match_spans(content: str, terms: list[str]) -> list[tuple[int, int]]:
    """Where `terms` occur in `content`, case-insensitively: sorted [start, end)
    character offsets, overlapping occurrences merged into one; the first
    MAX_MATCHES of them."""
    spans = []
    for term in terms:
        pattern = re.compile(re.escape(term), re.IGNORECASE)
        found, count = pattern.search(content), 0
        while found and count < MAX_MATCHES:
            spans.append((found.start(), found.end()))
            found, count = pattern.search(content, found.start() + 1), count + 1
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged[:MAX_MATCHES]


def search_messages(
    *, user: User, q: str, gid: int | None, offset: int, limit: int
) -> list[SearchResult]:
    """A page of the messages of the caller's groups (or of group `gid`) that contain
    every word of `q`, best match first."""
    scope = scope_of(user, search_terms(q), gid)
    if not scope.gids or not scope.terms:
        return []
    index_new_messages()
    ranked = _ranked_ids(scope, offset, limit)
    found = Message.objects.filter(pk__in=ranked, recalled=False).select_related("sender", "group")
    by_id = {m.pk: m for m in found}
    page = [by_id[msg_id] for msg_id in ranked if msg_id in by_id]
    reactions = reactions_of([m.pk for m in page], user.pk)
    return [
        SearchResult(
            entry=ChatEntry(
                group=m.group,
                message=m,
                user=m.sender,
                unread=None,
                reactions=reactions.get(m.pk, []),
            ),
            matches=match_spans(m.content, scope.terms),
        )
        for m in page
    ]


def scope_of(user: User, terms: list[str], gid: int | None) -> Scope:
    """The groups searched (raises NotMember for a `gid` the user is not in)."""
    if gid is not None:
        counts = {gid: access_group(user_id=user.pk, gid=gid).group.message_count}
    else:
        counts = dict(
            Membership.objects.filter(user=user).values_list("group_id", "group__message_count")
        )
    return Scope(
        terms=terms,
        user_id=user.pk,
        gid=gid,
        gids=list(counts),
        messages=sum(counts.values()),
        scan=settings.RIM_SEARCH_SCAN,
        depth=settings.RIM_SEARCH_DEPTH,
    )


@dataclass(frozen=True)
class Plan:
    """The statement that finds and ranks a page, and how its rows become the page's
    message ids."""

    sql: str
    params: list
    page: Callable[[list[tuple]], list[int]]


def plan(scope: Scope, offset: int, limit: int) -> Plan:
    return _PLANS[connection.vendor](scope, offset, limit)


def _ranked_ids(scope: Scope, offset: int, limit: int) -> list[int]:
    chosen = plan(scope, offset, limit)
    with connection.cursor() as cursor:
        cursor.execute(chosen.sql, chosen.params)
        return chosen.page(cursor.fetchall())


def _first_column(rows: list[tuple]) -> list[int]:
    return [row[0] for row in rows]


def _like_pattern(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _sqlite_groups(scope: Scope, column: str) -> tuple[str, list]:
    """The groups as a condition on `column`; the user's memberships are read in the
    statement itself (a list of ids could pass SQLite's limit of bound values)."""
    if scope.gid is not None:
        return f"{column} = %s", [scope.gid]
    return (
        f"{column} IN (SELECT group_id FROM chat_membership WHERE user_id = %s)",
        [scope.user_id],
    )


# PostgreSQL


def _has_case(term: str) -> bool:
    return term.lower() != term.upper()


def _pg_like(term: str) -> str:
    """ILIKE lower-cases every row it reads: a word without cased letters (CJK,
    digits) is matched with LIKE, many times faster, and the same."""
    return "ILIKE" if _has_case(term) else "LIKE"


def _postgresql(scope: Scope, offset: int, limit: int) -> Plan:
    """The newest matches, ranked by trigram similarity. On the index, the planner
    chooses between the trigram index (rare words) and walking the ids backwards
    (common ones)."""
    likes = " AND ".join(f"m.content {_pg_like(term)} %s" for term in scope.terms)
    if scope.through_index:
        where, params = "m.group_id = ANY(%s::bigint[])", [scope.gids]
    else:
        # The newest of each group from its end of the (group_id, id) index, then the
        # newest of those; as an array, not a subquery to join, so that each message
        # is then looked up by its id rather than the table scanned for the word.
        where = (
            "m.id = ANY(ARRAY(SELECT r.id FROM unnest(%s::bigint[]) AS g(id) CROSS JOIN "
            "LATERAL (SELECT id FROM chat_message WHERE group_id = g.id ORDER BY id DESC "
            "LIMIT %s) AS r ORDER BY r.id DESC LIMIT %s))"
        )
        params = [scope.gids, scope.scan, scope.scan]
    sql = (
        "SELECT id FROM ("
        f"  SELECT m.id, m.content FROM chat_message m WHERE {where} AND {SEARCHABLE}"
        f"  AND {likes} ORDER BY m.id DESC LIMIT %s"
        ") AS found ORDER BY similarity(content, %s) DESC, id DESC LIMIT %s OFFSET %s"
    )
    terms = [*map(_like_pattern, scope.terms)]
    params += [*terms, scope.depth, " ".join(scope.terms), limit, offset]
    return Plan(sql, params, _first_column)


# SQLite


def _sqlite_text(term: str) -> tuple[str, str]:
    """(the content as SQL compares it, the term as it appears there). SQLite's lower()
    and LIKE fold ASCII letters only: a word with other cased letters is compared
    with the content folded by Python (rim_casefold, see register_sqlite_functions)."""
    if all(c.isascii() or not _has_case(c) for c in term):
        return "lower(m.content)", term.lower()
    return "rim_casefold(m.content)", term.casefold()


def _sqlite_contains(terms: list[str]) -> tuple[str, list]:
    conditions, params = [], []
    for term in terms:
        text, folded = _sqlite_text(term)
        conditions.append(f"instr({text}, %s) > 0")
        params.append(folded)
    return "".join(f" AND {c}" for c in conditions), params


def _sqlite(scope: Scope, offset: int, limit: int) -> Plan:
    if scope.through_index:
        return _sqlite_index(scope, offset, limit)
    return _sqlite_scan(scope, offset, limit)


def _fts_phrase(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def _sqlite_index(scope: Scope, offset: int, limit: int) -> Plan:
    """The newest matches of the FTS5 trigram table in the groups, ranked by bm25()."""
    groups, group_params = _sqlite_groups(scope, "m.group_id")
    short, short_params = _sqlite_contains(scope.short)
    sql = (
        "SELECT id FROM ("
        "  SELECT f.rowid AS id, bm25(chat_message_search) AS score"
        "  FROM chat_message_search f JOIN chat_message m ON m.id = f.rowid"
        f"  WHERE chat_message_search MATCH %s AND {groups}{short}"
        "  ORDER BY f.rowid DESC LIMIT %s"
        ") ORDER BY score, id DESC LIMIT %s OFFSET %s"
    )
    match = " AND ".join(map(_fts_phrase, scope.indexed))
    params = [match, *group_params, *short_params, scope.depth, limit, offset]
    return Plan(sql, params, _first_column)


def _sqlite_scan(scope: Scope, offset: int, limit: int) -> Plan:
    """The newest matches among the newest messages of the groups, with each word's
    count and the length of the message, ranked here by BM25."""
    counts, count_params = [], []
    for term in scope.terms:
        text, folded = _sqlite_text(term)
        counts.append(f"(length({text}) - length(replace({text}, %s, ''))) / %s")
        count_params += [folded, len(folded)]
    groups, group_params = _sqlite_groups(scope, "r.group_id")
    contains, contains_params = _sqlite_contains(scope.terms)
    sql = (
        f"SELECT m.id, length(m.content), {', '.join(counts)} FROM chat_message m"
        f" WHERE m.id IN (SELECT r.id FROM chat_message r WHERE {groups}"
        " ORDER BY r.id DESC LIMIT %s)"
        f" AND {SEARCHABLE}{contains} ORDER BY m.id DESC LIMIT %s"
    )
    params = [*count_params, *group_params, scope.scan, *contains_params, scope.depth]

    def page(rows: list[tuple]) -> list[int]:
        rows.sort(key=_bm25_order(rows))
        return [row[0] for row in rows[offset : offset + limit]]

    return Plan(sql, params, page)


def _bm25_order(rows: list[tuple]):
    """Sort key of (id, length, count of each word) rows: best BM25 score first, then
    newest. Every row holds every word, so no word is rarer than another among them:
    each weighs the same."""
    average = sum(row[1] for row in rows) / max(len(rows), 1) or 1

    def key(row: tuple) -> tuple[float, int]:
        norm = BM25_K1 * (1 - BM25_B + BM25_B * row[1] / average)
        score = sum(n * (BM25_K1 + 1) / (n + norm) for n in row[2:])
        return (-score, -row[0])

    return key


def _casefold(text: str | None) -> str | None:
    return None if text is None else text.casefold()


def register_sqlite_functions(sender, connection, **kwargs) -> None:
    """On each new SQLite connection: rim_casefold(text), Python's full case folding."""
    if connection.vendor == "sqlite":
        connection.connection.create_function("rim_casefold", 1, _casefold, deterministic=True)


_PLANS = {"postgresql": _postgresql, "sqlite": _sqlite}
