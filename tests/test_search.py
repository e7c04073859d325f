"""Message search (PROTOCOL.md §6.3, docs/protocol.md): POST /api/message/search finds
text messages of the caller's groups by substring, in any script, best match first,
never a recalled one, by their current (edited) text, with where each term occurs.

These run on both stacks: SQLite (FTS5, kept in step by triggers) in the first pass,
PostgreSQL (pg_trgm GIN index) in the services pass."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from chat.models import Message
from chat.services import REMOVE, change_members
from chat.services import search as search_service
from chat.services.search import MAX_MATCHES
from tests.rest_helpers import (
    CHAT_MESSAGE_KEYS,
    GROUP_KEYS,
    MESSAGE_KEYS,
    USER_KEYS,
    call,
    direct_chat,
    fails,
    group_of,
    ok,
    send,
)


@pytest.fixture(autouse=True, params=["scan", "index"])
def path(request, monkeypatch) -> str:
    """Every test on both ways to a result: reading the groups' newest messages, and
    the trigram index (which a query with a word of 3 characters or more takes once
    the groups hold more than RIM_SEARCH_SCAN messages)."""
    if request.param == "index":
        monkeypatch.setattr(
            search_service.Scope, "through_index", property(lambda s: bool(s.indexed))
        )
    return request.param


def search(client, q: str, **body) -> list[dict]:
    return ok(client, "message/search", {"q": q, **body})


def ids(results: list[dict]) -> list[int]:
    return [r["msg"]["id"] for r in results]


def assert_index_in_step() -> None:
    """SQLite: once the new messages are indexed, the FTS table agrees with the rows it
    indexes (FTS5's own check). PostgreSQL maintains its index itself."""
    if connection.vendor == "sqlite":
        search_service.index_new_messages()
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO chat_message_search (chat_message_search, rank) "
                "VALUES ('integrity-check', 1)"
            )


# Membership


def test_search_finds_messages_of_the_callers_groups_only(client_for, alice, bob, carol):
    team = group_of(alice, bob, name="team")
    others = group_of(bob, carol, name="others")
    mine = send(bob, team, "deploy tonight")
    send(carol, others, "deploy tomorrow")
    assert ids(search(client_for(alice), "deploy")) == [mine.pk]
    assert len(search(client_for(bob), "deploy")) == 2


def test_a_group_left_is_no_longer_searched(client_for, alice, bob):
    team = group_of(alice, bob)
    send(bob, team, "the quarterly numbers")
    client = client_for(alice)
    assert len(search(client, "quarterly")) == 1
    change_members(user=alice, gid=team.pk, uids=[alice.pk], op=REMOVE)
    assert search(client, "quarterly") == []


def test_gid_narrows_the_search_to_that_group(client_for, alice, bob, carol):
    team = group_of(alice, bob)
    chat = direct_chat(alice, carol)
    in_team = send(bob, team, "lunch at noon")
    send(carol, chat, "lunch later?")
    assert ids(search(client_for(alice), "lunch", gid=team.pk)) == [in_team.pk]
    assert len(search(client_for(alice), "lunch", gid=None)) == 2


def test_gid_of_a_foreign_or_missing_group_is_403_like_history(client_for, alice, bob, carol):
    others = group_of(bob, carol)
    send(bob, others, "secret plans")
    client = client_for(alice)
    for gid in (others.pk, others.pk + 1000):
        assert fails(client, "message/search", {"q": "secret", "gid": gid}, expect=403) == (
            fails(client, "message/history", {"gid": gid}, expect=403)
        )


# What a result is


def test_a_result_is_historys_chat_message_with_the_sender_and_matches(client_for, alice, bob):
    team = group_of(alice, bob, name="team")
    message = send(bob, team, "ship it")
    (result,) = search(client_for(alice), "ship")
    assert set(result) == CHAT_MESSAGE_KEYS | {"matches"}
    assert set(result["group"]) == GROUP_KEYS and result["group"]["id"] == team.pk
    assert set(result["msg"]) == MESSAGE_KEYS
    assert result["user"]["id"] == bob.pk and set(result["user"]) == USER_KEYS
    assert result["unread"] is None
    (entry,) = ok(client_for(alice), "message/history", {"gid": team.pk})
    assert {key: result[key] for key in CHAT_MESSAGE_KEYS} == entry
    assert result["msg"]["id"] == message.pk and result["matches"] == [[0, 4]]


def test_only_text_messages_are_searched_not_the_urls_of_images(client_for, alice, bob):
    team = group_of(alice, bob)
    send(bob, team, "/media/holiday.jpg", kind="Image")
    text = send(bob, team, "holiday photos", kind="RichText")
    assert ids(search(client_for(alice), "holiday")) == [text.pk]


# Recall and edit


def test_a_recalled_message_is_never_returned(client_for, alice, bob):
    team = group_of(alice, bob)
    message = send(bob, team, "oops wrong chat")
    kept = send(bob, team, "wrong answer")
    ok(client_for(bob), "message/recall", {"gid": team.pk, "msgId": message.pk})
    for client in (client_for(alice), client_for(bob)):
        assert ids(search(client, "wrong")) == [kept.pk]
        assert search(client, "oops") == []
    assert_index_in_step()


def test_changes_before_and_after_a_message_is_indexed_are_searched_right(client_for, alice, bob):
    """On SQLite a message enters the index in a later batch (or at the next search);
    an edit or a recall before that, or after it, leaves the index right."""
    team = group_of(alice, bob)
    sent = [send(bob, team, f"draft {n}") for n in range(4)]
    assert search_service.index_new_messages(limit=2) is (connection.vendor == "sqlite")
    (indexed_edit, indexed_recall), (later_edit, later_recall) = sent[:2], sent[2:]
    for message in (indexed_edit, later_edit):
        ok(
            client_for(bob),
            "message/edit",
            {"gid": team.pk, "msgId": message.pk, "content": f"final {message.pk}"},
        )
    for message in (indexed_recall, later_recall):
        ok(client_for(bob), "message/recall", {"gid": team.pk, "msgId": message.pk})
    assert_index_in_step()
    assert search(client_for(alice), "draft") == []
    assert set(ids(search(client_for(alice), "final"))) == {indexed_edit.pk, later_edit.pk}
    assert search_service.index_new_messages() is False  # nothing left


def test_an_edited_message_is_found_by_its_new_text_not_its_old(client_for, alice, bob):
    team = group_of(alice, bob)
    message = send(bob, team, "meet at the harbour")
    ok(
        client_for(bob),
        "message/edit",
        {"gid": team.pk, "msgId": message.pk, "content": "meet at the station"},
    )
    client = client_for(alice)
    assert search(client, "harbour") == []
    (result,) = search(client, "station")
    assert result["msg"]["content"] == "meet at the station"
    assert result["matches"] == [[12, 19]]
    assert_index_in_step()


def test_deleted_messages_leave_the_index(client_for, alice, bob):
    team = group_of(alice, bob)
    send(bob, team, "temporary note")
    Message.objects.filter(group=team).delete()
    assert search(client_for(alice), "temporary") == []
    assert_index_in_step()


def migrate(app_label: str, name: str) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate([(app_label, name)])


def test_the_migration_indexes_the_messages_stored_before_it(
    transactional_db, client_for, alice, bob
):
    team = group_of(alice, bob)
    before = send(bob, team, "archived minutes of march")
    migrate("chat", "0003_message_file")
    try:
        during = send(bob, team, "archived minutes of april")
    finally:
        migrate("chat", "0004_message_search")
    after = send(bob, team, "archived minutes of may")
    found = ids(search(client_for(alice), "archived minutes"))
    assert sorted(found) == [before.pk, during.pk, after.pk]
    assert_index_in_step()


def test_the_searchable_rows_are_those_the_index_holds(alice, bob):
    """The queries repeat the index's condition (SEARCHABLE), so the index can serve
    them: PostgreSQL uses a partial index only for a query whose condition implies its
    own; SQLite's view holds the same rows, once indexed."""
    team = group_of(alice, bob)
    send(bob, team, "needle in a haystack")
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(
                "EXPLAIN SELECT m.id FROM chat_message m "
                f"WHERE {search_service.SEARCHABLE} AND m.content ILIKE %s",
                ["%needle%"],
            )
            assert "Bitmap Index Scan on chat_message_search" in str(cursor.fetchall())
        else:
            search_service.index_new_messages()
            cursor.execute(
                "SELECT count(*) FROM chat_message m "
                f"WHERE {search_service.SEARCHABLE} AND m.id IN "
                "(SELECT rowid FROM chat_message_search WHERE chat_message_search MATCH 'needle')"
            )
            assert cursor.fetchone() == (1,)


# Ranking and paging


def test_a_better_match_ranks_first_even_when_older(client_for, alice, bob):
    team = group_of(alice, bob)
    best = send(bob, team, "release notes")
    weaker = send(bob, team, "we talked about many things, among them the notes of the release")
    assert ids(search(client_for(alice), "release notes")) == [best.pk, weaker.pk]
    assert ids(search(client_for(alice), "release")) == [best.pk, weaker.pk]


def test_equal_matches_come_newest_first(client_for, alice, bob):
    team = group_of(alice, bob)
    older = send(bob, team, "same words")
    newer = send(alice, team, "same words")
    assert ids(search(client_for(alice), "same")) == [newer.pk, older.pk]


def test_every_term_must_occur(client_for, alice, bob):
    team = group_of(alice, bob)
    both = send(bob, team, "red and blue")
    send(bob, team, "only red")
    send(bob, team, "only blue")
    (result,) = search(client_for(alice), "blue red")
    assert result["msg"]["id"] == both.pk
    assert result["matches"] == [[0, 3], [8, 12]]


def test_pages_follow_each_other_without_repeats(client_for, alice, bob):
    team = group_of(alice, bob)
    sent = [send(bob, team, f"report number {i}").pk for i in range(7)]
    client = client_for(alice)
    pages = [search(client, "report", page=page, size=3) for page in (1, 2, 3, 4)]
    assert [len(page) for page in pages] == [3, 3, 1, 0]
    assert sorted(ids(pages[0] + pages[1] + pages[2])) == sorted(sent)
    assert ids(search(client, "report", size=7)) == ids(pages[0] + pages[1] + pages[2])


# Where the matches are


@pytest.mark.parametrize(
    ("content", "q", "matches"),
    [
        ("Deploy the deploy-script, then DEPLOY", "deploy", [[0, 6], [11, 17], [31, 37]]),
        ("Привет, мир! ПРИВЕТ", "привет", [[0, 6], [13, 19]]),
        ("我住在東京都，東京很大", "東京", [[3, 5], [7, 9]]),
        ("我住在東京都，東京都很大", "東京都", [[3, 6], [7, 10]]),
        ("😀 café au lait, café", "café", [[2, 6], [16, 20]]),
        ("abcd", "abc bcd", [[0, 4]]),
        ("aaaa", "aa", [[0, 4]]),
        ("مرحبا بالعالم", "بالعالم", [[6, 13]]),
    ],
)
def test_matches_are_character_offsets_of_every_occurrence(
    client_for, alice, bob, content, q, matches
):
    team = group_of(alice, bob)
    send(bob, team, content)
    (result,) = search(client_for(alice), q)
    assert result["matches"] == matches
    for start, end in matches:
        assert any(term.casefold() in content[start:end].casefold() for term in q.split()), content[
            start:end
        ]


def test_a_message_gives_at_most_max_matches_ranges(client_for, alice, bob):
    team = group_of(alice, bob)
    send(bob, team, "a " * (MAX_MATCHES + 50))
    (result,) = search(client_for(alice), "a")
    assert len(result["matches"]) == MAX_MATCHES
    assert result["matches"][:2] == [[0, 1], [2, 3]]


@pytest.mark.parametrize(
    ("content", "q"),
    [
        ("Встреча завтра в офисе", "ЗАВТРА"),
        ("会议改到明天下午三点", "明天"),
        ("会议改到明天下午三点", "下午三点"),
        ("Καλημέρα σε όλους", "καλημέρα"),
        ("ok see you", "ok"),
        ("x", "x"),
    ],
)
def test_text_in_any_script_is_found_case_insensitively(client_for, alice, bob, content, q):
    team = group_of(alice, bob)
    message = send(bob, team, content)
    send(bob, team, "something else entirely")
    assert ids(search(client_for(alice), q)) == [message.pk]


@pytest.mark.parametrize(
    "q", ["100%", "5_000", '"quoted"', "a*b", "NEAR(x)", "AND", "it's", "c:\\tmp", "x%y_z"]
)
def test_query_characters_are_taken_literally(client_for, alice, bob, q):
    team = group_of(alice, bob)
    message = send(bob, team, f"see {q} here")
    send(bob, team, "1000 5x000 quoted ab NEAR x its tmp xaybz")
    (result,) = search(client_for(alice), q)
    assert result["msg"]["id"] == message.pk
    assert result["matches"] == [[4, 4 + len(q)]]


# Bad input


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "q"),
        ({"q": ""}, "q"),
        ({"q": "   "}, "q"),
        ({"q": "x" * 201}, "q"),
        ({"q": None}, "q"),
        ({"q": ["list"]}, "q"),
        ({"q": "ok", "page": 0}, "page"),
        ({"q": "ok", "page": "one"}, "page"),
        ({"q": "ok", "size": 0}, "size"),
        ({"q": "ok", "size": 101}, "size"),
        ({"q": "ok", "gid": "abc"}, "gid"),
        ({"q": "ok", "gid": 0}, "gid"),
        ({"q": "ok", "gid": 2**63}, "gid"),
    ],
)
def test_bad_input_is_400_naming_the_field(settings, client_for, alice, body, field):
    settings.RIM_PAGE_SIZE_MAX = 100
    msg = fails(client_for(alice), "message/search", body, expect=400)
    assert msg.startswith(f"{field}: "), msg


def test_a_query_of_200_characters_after_trimming_is_accepted(client_for, alice, bob):
    team = group_of(alice, bob)
    long_word = "y" * 200
    message = send(bob, team, long_word)
    assert ids(search(client_for(alice), f"  {long_word}\n")) == [message.pk]


def test_search_without_token_is_401(api_client, db):
    status, body = call(api_client, "message/search", {"q": "hello"})
    assert (status, body["msg"]) == (401, "login required")
