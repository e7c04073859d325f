#!/usr/bin/env python3
"""Message search at one million messages (issue 14), on SQLite and on PostgreSQL.

Builds a database the way a deployment grows one: the schema up to the migration
before search (chat 0003), a bulk load of users, conversations, memberships and
messages, then the search migration (chat 0004) over the existing rows, timed. Then
it times `chat.services.search_messages` over a few hundred queries of varied
selectivity for users in few and in many groups, and prints p50/p95/p99 overall and
per kind of query, per user and per plan.

The data (seeded, the same on both backends):
  - 20,000 users; 30,000 one-to-one chats and 3,000 group chats (3 to ~500 members,
    heavy-tailed), so most users are in a handful of conversations;
  - user "few" is in 3 conversations; user "many" in 450 (200 one-to-one chats, the
    100 busiest group chats and 150 others);
  - 1,000,000 messages over those conversations, heavy-tailed (a few conversations
    carry most of them), one every 30 s over a year;
  - text drawn from Zipf-distributed vocabularies (s = 1.05): English (about 120 real
    common words, then 30,000 made-up ones) 81 %, Russian (Cyrillic) 9 %, Chinese
    (runs of CJK characters without spaces) 6 %, Arabic 1 %, emoji on 5 % of them;
    3 % images (a URL) and 0.5 % recalled (content erased).

    .venv/bin/python benchmarks/search_bench.py                  # both backends
    .venv/bin/python benchmarks/search_bench.py --backends sqlite --reuse
    .venv/bin/python benchmarks/search_bench.py --messages 100000 --queries 100

PostgreSQL: a database `rim_search_bench` on RIM_BENCH_POSTGRES (default
postgres://127.0.0.1:5432/test's server), created for the run and kept for `--reuse`
(`--drop` removes it at the end). SQLite: var/search-bench.sqlite3. Loopback only.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("RIM_BENCH_POSTGRES", "postgres://127.0.0.1:5432/test")
PG_NAME = "rim_search_bench"
SQLITE_PATH = ROOT / "var" / "search-bench.sqlite3"
OUT = ROOT / "benchmarks" / "out"

USERS = 20_000
DIRECT_CHATS = 30_000
GROUP_CHATS = 3_000
FEW, MANY = 1, 2  # user ids
START = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
STEP = datetime.timedelta(seconds=30)
ZIPF_S = 1.05
BEFORE_SEARCH, SEARCH = "0003_message_file", "0004_message_search"

ENGLISH = (
    "the to and a i you it of is in that for me on my we this be have not are with so "
    "just but what do at was can like get if all no your up go one know out about ok "
    "good yes now how will there time think see want when got they yeah from too come "
    "back here lol then did really would need right going today tomorrow meeting send "
    "thanks please call work home later sure could some more any where why who them "
    "sorry let new make still been way day night week after before take look over "
    "morning deploy release server bug fix test coffee lunch weekend friday monday "
    "project review photo party birthday train airport office budget report"
).split()
RUSSIAN = (
    "и в не на я что он с это как а по но к у ты из мы за вы так же от то бы все она "
    "да о мне нет уже привет спасибо хорошо сегодня завтра когда где есть был тебя "
    "меня только может очень будет встреча работа дома потом давай ладно понял"
).split()
ARABIC_LETTERS = "ابتثجحخدذرزسشصضطظعغفقكلمنهوي"
EMOJI = "👍😂❤️🎉🙏😅🔥✅😊🤔"
SYLLABLES_LATIN = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"] + ["qu", "th", "sh"]
SYLLABLES_CYRILLIC = [c + v for c in "бвгдзклмнпрстфхцчш" for v in "аеиоуыя"]


def zipf_cumulative(count: int) -> list[float]:
    return list(itertools.accumulate(1 / rank**ZIPF_S for rank in range(1, count + 1)))


def made_up_words(rng: random.Random, syllables: list[str], count: int, taken: set) -> list:
    words = []
    while len(words) < count:
        word = "".join(rng.choices(syllables, k=rng.choice((2, 2, 3, 3, 4))))
        if word not in taken:
            taken.add(word)
            words.append(word)
    return words


@dataclass
class Vocabulary:
    """One language: its words by rank, how to join them, its Zipf weights."""

    words: list[str]
    separator: str = " "
    cumulative: list[float] = field(init=False)

    def __post_init__(self):
        self.cumulative = zipf_cumulative(len(self.words))

    def text(self, rng: random.Random, length: int) -> str:
        return self.separator.join(rng.choices(self.words, cum_weights=self.cumulative, k=length))


def vocabularies(rng: random.Random) -> dict[str, Vocabulary]:
    english = ENGLISH + made_up_words(rng, SYLLABLES_LATIN, 30_000, set(ENGLISH))
    russian = RUSSIAN + made_up_words(rng, SYLLABLES_CYRILLIC, 10_000, set(RUSSIAN))
    hanzi = [chr(code) for code in rng.sample(range(0x4E00, 0x9FA5), 3000)]
    chinese_words = sorted(
        {"".join(rng.choices(hanzi[:1500], k=rng.choice((1, 2, 2, 2, 3)))) for _ in range(9000)},
        key=lambda _: rng.random(),
    )
    arabic = made_up_words(rng, list(ARABIC_LETTERS), 3000, set())
    return {
        "en": Vocabulary(english),
        "ru": Vocabulary(russian),
        "zh": Vocabulary(chinese_words, separator=""),
        "ar": Vocabulary(arabic),
    }


LANGUAGES = [("en", 0.81), ("ru", 0.09), ("zh", 0.06), ("ar", 0.01), ("image", 0.03)]


@dataclass
class Dataset:
    users: list[tuple]
    groups: list[tuple]
    memberships: list[tuple]
    messages: list[tuple]


# avatar, email, is_active, is_staff, date_joined, last_seen
PROFILE = ("", "", True, False, START, None)


def build_dataset(seed: int, message_count: int) -> Dataset:
    rng = random.Random(seed)
    vocab = vocabularies(rng)
    members: dict[int, set[int]] = {}
    modes: dict[int, int] = {}
    pair_keys: dict[int, str] = {}
    gids = itertools.count(1)
    pairs: set[tuple[int, int]] = set()

    def direct(a: int, b: int) -> int | None:
        low, high = min(a, b), max(a, b)
        if low == high or (low, high) in pairs:
            return None
        pairs.add((low, high))
        gid = next(gids)
        members[gid], modes[gid], pair_keys[gid] = {a, b}, 1, f"{low}:{high}"
        return gid

    ordinary = range(3, USERS + 1)
    while len(pairs) < DIRECT_CHATS:
        direct(rng.choice(ordinary), rng.choice(ordinary))
    for _ in range(GROUP_CHATS):
        size = min(3 + int(rng.paretovariate(1.1) * 3), 500)
        gid = next(gids)
        members[gid], modes[gid] = set(rng.sample(ordinary, size)), 2
    # Heavy-tailed traffic: a few conversations carry most messages.
    weights = {gid: rng.paretovariate(0.9) for gid in members}
    group_chats = [gid for gid in members if modes[gid] == 2]
    busiest = sorted(group_chats, key=weights.get, reverse=True)
    for gid in busiest[:100] + rng.sample(busiest[100:], 150):
        members[gid].add(MANY)
    while sum(MANY in m for m in members.values()) < 450:
        direct(MANY, rng.choice(ordinary))
    for gid in members:
        weights.setdefault(gid, rng.paretovariate(0.9))
    # "few": a small, busy group chat and two one-to-one chats as busy as it.
    small = next(gid for gid in busiest[300:] if len(members[gid]) <= 6)
    members[small].add(FEW)
    for peer in (3, 4):
        weights[direct(FEW, peer)] = weights[small]

    order = list(members)
    cumulative = list(itertools.accumulate(weights[gid] for gid in order))
    message_groups = rng.choices(order, cum_weights=cumulative, k=message_count)
    seqs: dict[int, int] = {}
    last_msg: dict[int, int] = {}
    member_lists = {gid: sorted(m) for gid, m in members.items()}
    languages, shares = zip(*LANGUAGES, strict=True)
    language_of = rng.choices(languages, weights=shares, k=message_count)
    messages = []
    for index, (gid, language) in enumerate(zip(message_groups, language_of, strict=True)):
        msg_id = index + 1
        seq = seqs[gid] = seqs.get(gid, 0) + 1
        last_msg[gid] = msg_id
        kind, recalled = "Text", False
        if language == "image":
            kind, content = "Image", f"/media/{rng.getrandbits(64):016x}.jpg"
        else:
            length = max(1, min(int(rng.lognormvariate(1.9, 0.7)), 60))
            if language == "zh":
                length = max(2, length)
            content = vocab[language].text(rng, length)
            if rng.random() < 0.05:
                content += " " + rng.choice(EMOJI)
            if rng.random() < 0.005:
                content, recalled = "", True
        created = START + STEP * index
        messages.append(
            (
                msg_id,
                gid,
                seq,
                seq,
                rng.choice(member_lists[gid]),
                kind,
                content,
                f"c{msg_id}",
                None,
                recalled,
                None,
                created,
                created,
            )
        )

    accounts = {FEW: "few", MANY: "many"}
    users = [
        (uid, "!", None, False, accounts.get(uid, f"u{uid}"), f"User {uid}", *PROFILE)
        for uid in range(1, USERS + 1)
    ]
    groups = [
        (
            gid,
            "" if modes[gid] == 1 else f"group {gid}",
            "",
            modes[gid],
            min(members[gid]),
            START,
            seqs.get(gid, 0),
            seqs.get(gid, 0),
            0,
            last_msg.get(gid),
            pair_keys.get(gid),
        )
        for gid in order
    ]
    memberships = [
        (index, gid, uid, 2 if uid == min(members[gid]) else 1, 0, 0, 0, 0, START)
        for index, (gid, uid) in enumerate(
            ((gid, uid) for gid in order for uid in member_lists[gid]), start=1
        )
    ]
    return Dataset(users, groups, memberships, messages)


COLUMNS = {
    "accounts_user": "id, password, last_login, is_superuser, account, name, avatar, email, "
    "is_active, is_staff, date_joined, last_seen",
    "chat_group": "id, name, avatar, mode, creator_id, created_at, last_seq, message_count, "
    "members_version, last_msg_id, pair_key",
    "chat_membership": "id, group_id, user_id, role, delivered_seq, read_seq, read_count, "
    "joined_seq, joined_at",
    "chat_message": "id, group_id, seq, number, sender_id, kind, content, client_msg_id, "
    "reply_to_id, recalled, edited_at, created_at, updated_at",
}


def tables_of(data: Dataset) -> list[tuple[str, list[tuple]]]:
    return [
        ("accounts_user", data.users),
        ("chat_group", data.groups),
        ("chat_membership", data.memberships),
        ("chat_message", data.messages),
    ]


def setup_django(backend: str) -> None:
    os.environ["DATABASE_URL"] = (
        f"sqlite:///{SQLITE_PATH}"
        if backend == "sqlite"
        else PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{PG_NAME}"
    )
    os.environ.setdefault("RIM_LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rimsite.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def fresh_database(backend: str) -> None:
    if backend == "sqlite":
        SQLITE_PATH.parent.mkdir(exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{SQLITE_PATH}{suffix}").unlink(missing_ok=True)
        return
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {PG_NAME} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {PG_NAME}")


def drop_database(backend: str) -> None:
    if backend == "sqlite":
        fresh_database(backend)
        return
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {PG_NAME} WITH (FORCE)")


def bulk_load(data: Dataset) -> None:
    """COPY on PostgreSQL, executemany in one transaction on SQLite."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        for table, rows in tables_of(data):
            columns = COLUMNS[table]
            if connection.vendor == "postgresql":
                with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}"
                )
            else:
                marks = ", ".join(["%s"] * len(columns.split(",")))
                cursor.executemany(
                    f"INSERT INTO {table} ({columns}) VALUES ({marks})",
                    [tuple(_sqlite_value(v) for v in row) for row in rows],
                )
        cursor.execute("ANALYZE")
    if connection.vendor == "postgresql":
        # As autovacuum leaves a table that has settled: the visibility map set, so
        # that index-only scans need not visit the rows.
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")


def _sqlite_value(value):
    if isinstance(value, datetime.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return value


def build(backend: str, data: Dataset) -> dict:
    from django.core.management import call_command

    fresh_database(backend)
    call_command("migrate", verbosity=0)
    call_command("migrate", "chat", BEFORE_SEARCH, verbosity=0)
    started = time.perf_counter()
    bulk_load(data)
    loaded = time.perf_counter()
    call_command("migrate", "chat", SEARCH, verbosity=0)
    migrated = time.perf_counter()
    return {"load_s": loaded - started, "migrate_s": migrated - loaded}


@dataclass(frozen=True)
class Query:
    kind: str
    who: str
    uid: int
    q: str
    gid: int | None = None


COMMON = [w for w in ENGLISH[:60] if len(w) >= 3]
SHORT = [w for w in ENGLISH[:60] if len(w) < 3]
KINDS = ("rare", "mid", "common", "two words", "short", "cyrillic", "cjk", "no match", "gid")


@dataclass(frozen=True)
class Population:
    """Who can search what, as the database has it."""

    visible: dict[int, int]  # user id -> messages in its conversations
    groups: dict[int, int]  # user id -> conversations
    busiest: dict[int, int]  # user id -> its conversation with the most messages


def population() -> Population:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT s.user_id, g.id, g.message_count FROM chat_membership s "
            "JOIN chat_group g ON g.id = s.group_id"
        )
        rows = cursor.fetchall()
    visible: dict[int, int] = {}
    groups: dict[int, int] = {}
    busiest: dict[int, tuple[int, int]] = {}
    for uid, gid, count in rows:
        visible[uid] = visible.get(uid, 0) + count
        groups[uid] = groups.get(uid, 0) + 1
        busiest[uid] = max(busiest.get(uid, (-1, 0)), (count, gid))
    return Population(visible, groups, {uid: gid for uid, (_, gid) in busiest.items()})


WHO = ("few", "many", "middle", "typical")
MIDDLE_OF = 10_000  # RIM_SEARCH_SCAN's default


def middle_user(people: Population) -> int:
    """A user just past where the search changes from reading the groups' messages to
    the index: there a common word costs the most (benchmarks/RESULTS.md, Search)."""
    others = [uid for uid in people.visible if uid not in (FEW, MANY)]
    return min(others, key=lambda uid: abs(people.visible[uid] - 2 * MIDDLE_OF))


def queries(seed: int, people: Population, per_cell: int) -> list[Query]:
    """per_cell queries of each kind for each of: "few", "many", "middle" and
    typical users."""
    rng = random.Random(seed)
    vocab = vocabularies(random.Random(seed))
    english, russian, chinese = vocab["en"].words, vocab["ru"].words, vocab["zh"].words
    typical = [uid for uid, seen in people.visible.items() if seen and uid not in (FEW, MANY)]
    words = {
        "rare": lambda: rng.choice(english[3000:]),
        "mid": lambda: rng.choice(english[100:1000]),
        "common": lambda: rng.choice(COMMON),
        "two words": lambda: " ".join(
            rng.choice(
                [
                    (rng.choice(COMMON), rng.choice(english[100:1000])),
                    (rng.choice(english[100:1000]), rng.choice(english[100:1000])),
                    (rng.choice(english[3000:]), rng.choice(COMMON)),
                ]
            )
        ),
        "short": lambda: rng.choice(SHORT),
        "cyrillic": lambda: rng.choice(russian[:3000]),
        "cjk": lambda: rng.choice(chinese[:3000]),
        "no match": lambda: "".join(rng.choices("qxzjv", k=5)),
        "gid": lambda: rng.choice(COMMON + english[100:1000]),
    }
    middle = middle_user(people)
    found = []
    for kind in KINDS:
        for who in WHO:
            for _ in range(per_cell):
                uid = {"few": FEW, "many": MANY, "middle": middle}.get(who) or rng.choice(typical)
                gid = people.busiest[uid] if kind == "gid" else None
                found.append(Query(kind, who, uid, words[kind](), gid))
    rng.shuffle(found)
    return found


def percentiles(samples: list[float]) -> dict:
    ordered = sorted(samples)

    def at(share: float) -> float:
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

    return {
        "n": len(ordered),
        "p50": statistics.median(ordered),
        "p95": at(0.95),
        "p99": at(0.99),
        "max": ordered[-1],
    }


def measure(workload: list[Query], size: int, rounds: int) -> dict:
    """Time search_messages for each query, `rounds` times in a new order each time
    (after a warm-up pass over a tenth of them), and keep each query's median: a
    moment of load from the machine's other users moves one sample, not the
    figure. The slowest few again under EXPLAIN ANALYZE."""
    from django.db import connection

    from accounts.models import User
    from chat.services import search, search_messages

    users = User.objects.in_bulk({query.uid for query in workload})
    # The CPU time a search takes: this process's, and on PostgreSQL its server
    # process's; what an idle machine would take, whatever else runs beside it.
    cpu_ms: dict[Query, list[float]] = {query: [] for query in workload}

    def run(query: Query) -> tuple[float, int]:
        server = database_process()
        server_cpu = cpu_ns(server)
        started, cpu = time.perf_counter(), time.process_time()
        found = search_messages(
            user=users[query.uid], q=query.q, gid=query.gid, offset=0, limit=size
        )
        elapsed = (time.perf_counter() - started) * 1000
        spent = (time.process_time() - cpu) * 1000 + (cpu_ns(server) - server_cpu) / 1e6
        cpu_ms[query].append(spent)
        return elapsed, len(found)

    def path(query: Query) -> str:
        scope = search.scope_of(users[query.uid], search.search_terms(query.q), query.gid)
        return "index" if scope.through_index else "scan"

    for query in workload[: len(workload) // 10]:
        run(query)
    load_before = os.getloadavg()
    samples: dict[Query, list[float]] = {query: [] for query in workload}
    found: dict[Query, int] = {}
    for round_ in range(rounds):
        for query in random.Random(round_).sample(workload, len(workload)):
            ms, found[query] = run(query)
            samples[query].append(ms)
    load_after = os.getloadavg()
    timed = [(query, statistics.median(samples[query]), found[query]) for query in workload]
    paths = {query: path(query) for query in workload}
    slowest = sorted(timed, key=lambda row: row[1], reverse=True)[:3]
    return {
        "vendor": connection.vendor,
        "load": [load_before, load_after],
        "overall": percentiles([ms for _, ms, _ in timed]),
        "cpu": percentiles([statistics.median(cpu_ms[query]) for query in workload]),
        "by user": {who: percentiles([ms for q, ms, _ in timed if q.who == who]) for who in WHO},
        "by path": {
            name: percentiles([ms for q, ms, _ in timed if paths[q] == name])
            for name in sorted(set(paths.values()))
        },
        "by kind": {
            kind: percentiles([ms for q, ms, _ in timed if q.kind == kind]) for kind in KINDS
        },
        "results": {kind: sum(n for q, _, n in timed if q.kind == kind) for kind in KINDS},
        "over 50 ms": [
            {"query": q.__dict__, "path": paths[q], "ms": ms} for q, ms, _ in timed if ms > 50
        ],
        "slowest": [
            {
                "query": q.__dict__,
                "path": paths[q],
                "ms": ms,
                "plan": explain(users[q.uid], q, size),
            }
            for q, ms, _ in slowest
        ],
    }


def database_process() -> int | None:
    """The PostgreSQL server process of this connection (None on SQLite)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def cpu_ns(pid: int | None) -> int:
    """Nanoseconds a process has run on a CPU (the scheduler's own count), 0 for none.
    PostgreSQL's parallel workers, when a plan starts some, are not counted."""
    if pid is None:
        return 0
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])


def explain(user, query: Query, size: int) -> str:
    """EXPLAIN ANALYZE (PostgreSQL) or EXPLAIN QUERY PLAN (SQLite) of the ranking query."""
    from django.db import connection

    from chat.services import search

    scope = search.scope_of(user, search.search_terms(query.q), query.gid)
    chosen = search.plan(scope, 0, size)
    prefix = (
        "EXPLAIN (ANALYZE, BUFFERS) "
        if connection.vendor == "postgresql"
        else ("EXPLAIN QUERY PLAN ")
    )
    with connection.cursor() as cursor:
        cursor.execute(prefix + chosen.sql, chosen.params)
        return "\n".join(" | ".join(map(str, row)) for row in cursor.fetchall())


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = next(
        line.split()[1]
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return f"{os.cpu_count()} cores ({cpu}), {int(memory) // 2**20} GiB, {platform.platform()}"


def run_backend(args: argparse.Namespace) -> dict:
    """In a process of its own (Django's settings come from the environment)."""
    setup_django(args.backend)
    report: dict = {"backend": args.backend, "machine": machine()}
    if not args.reuse:
        started = time.perf_counter()
        data = build_dataset(args.seed, args.messages)
        report["generate_s"] = time.perf_counter() - started
        report["build"] = build(args.backend, data)
    people = population()
    users = {"few": FEW, "many": MANY, "middle": middle_user(people)}
    report["visible"] = {who: people.visible[uid] for who, uid in users.items()}
    report["groups"] = {who: people.groups[uid] for who, uid in users.items()}
    per_cell = max(1, args.queries // (len(KINDS) * len(WHO)))
    report.update(measure(queries(args.seed, people, per_cell), args.size, args.rounds))
    return report


def report_markdown(reports: list[dict]) -> str:
    lines = []
    for report in reports:
        lines.append(f"### {report['backend']} ({report['vendor']})")
        build_ = report.get("build")
        if build_:
            lines.append(
                f"Bulk load {build_['load_s']:.0f} s, search migration (index of the "
                f"existing rows) {build_['migrate_s']:.0f} s."
            )
        lines.append(
            f"Load average before/after: {report['load'][0][0]:.2f} / {report['load'][1][0]:.2f}."
            " Users: "
            + "; ".join(
                f"{who}: {report['groups'][who]} conversations, {report['visible'][who]} messages"
                for who in report["groups"]
            )
            + "."
        )
        lines += [
            "",
            "| queries | n | p50 ms | p95 ms | p99 ms | max ms |",
            "|---|---|---|---|---|---|",
        ]
        rows = [("**all**", report["overall"])]
        rows.append(("all, CPU time (see below)", report["cpu"]))
        rows += [(f"user {who}", p) for who, p in report["by user"].items()]
        rows += [(f"path {name}", p) for name, p in report["by path"].items()]
        rows += list(report["by kind"].items())
        for name, p in rows:
            lines.append(
                f"| {name} | {p['n']} | {p['p50']:.1f} | {p['p95']:.1f} | {p['p99']:.1f} |"
                f" {p['max']:.1f} |"
            )
        lines.append("")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument("--backend", help=argparse.SUPPRESS)
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=432, help="timed queries (about)")
    ap.add_argument("--size", type=int, default=20, help="page size")
    ap.add_argument("--rounds", type=int, default=3, help="timings per query (median kept)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--reuse", action="store_true", help="search the database built before")
    ap.add_argument("--drop", action="store_true", help="remove the databases at the end")
    return ap.parse_args(argv)


def main() -> int:
    args = parse_args()
    if args.backend:
        report = run_backend(args)
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / f"search-{args.backend}.json").write_text(json.dumps(report, indent=1))
        return 0
    reports = []
    for backend in args.backends.split(","):
        command = [sys.executable, __file__, "--backend", backend, *sys.argv[1:]]
        subprocess.run(command, check=True)
        reports.append(json.loads((OUT / f"search-{backend}.json").read_text()))
        if args.drop:
            drop_database(backend)
    print(report_markdown(reports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
