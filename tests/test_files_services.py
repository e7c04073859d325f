"""What the chat app calls (file_for_url, mark_sent, delete_if_unused), purging unsent
uploads, and deleting files in the admin: rows and stored objects go together, on
either store, and the objects only after the commit."""

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django.utils import timezone

from files import services
from files.models import File
from tests.files_helpers import image_bytes, uploaded

pytestmark = pytest.mark.usefixtures("upload_sandbox")


def upload_as(client, name: str = "a.png") -> File:
    return File.objects.get(pk=uploaded(client, image_bytes("PNG"), name)["id"])


def age(file: File, seconds: float) -> None:
    File.objects.filter(pk=file.pk).update(created_at=timezone.now() - timedelta(seconds=seconds))


# file_for_url / mark_sent / delete_if_unused


def test_file_for_url_finds_the_senders_own_file_by_its_exact_url(alice_client, alice, bob):
    file = upload_as(alice_client)
    url = services.file_url(file)
    assert services.file_for_url(url, alice.pk) == file
    assert services.file_for_url(url, bob.pk) is None  # not bob's to send


@pytest.mark.parametrize(
    "mangle",
    [
        lambda url: "https://evil.example" + url,
        lambda url: url + "/thumb",
        lambda url: url + "?x=1",
        lambda url: url[:-1],
        lambda url: url.replace("/api/file/", "/api/files/"),
        lambda url: "",
        lambda url: "not a url at all",
    ],
)
def test_file_for_url_accepts_nothing_but_a_rim_file_url(alice_client, alice, mangle):
    url = services.file_url(upload_as(alice_client))
    assert services.file_for_url(mangle(url), alice.pk) is None


def test_file_for_url_wants_the_public_url_when_one_is_set(alice_client, alice, settings):
    file = upload_as(alice_client)
    path = services.file_url(file)
    settings.RIM_PUBLIC_URL = "https://chat.example.com"
    assert services.file_for_url(path, alice.pk) is None
    assert services.file_for_url("https://chat.example.com" + path, alice.pk) == file


def test_file_for_url_can_lock_the_row(alice_client, alice, django_assert_num_queries):
    url = services.file_url(upload_as(alice_client))
    with transaction.atomic(), django_assert_num_queries(1) as queries:
        assert services.file_for_url(url, alice.pk, lock=True) is not None
    # SQLite has no row locks (its writers are serialised); PostgreSQL's SQL says so.
    sql = queries.captured_queries[0]["sql"]
    assert "FOR UPDATE" in sql or transaction.get_connection().vendor == "sqlite"


def test_mark_sent_records_the_first_sending_only(alice_client, django_assert_num_queries):
    file = upload_as(alice_client)
    with django_assert_num_queries(1):
        services.mark_sent(file)
    first = File.objects.get(pk=file.pk).sent_at
    assert first is not None and file.sent_at == first
    with django_assert_num_queries(0):
        services.mark_sent(file)
    assert File.objects.get(pk=file.pk).sent_at == first


def test_delete_if_unused_keeps_a_file_another_message_carries(alice_client, file_storage):
    file = upload_as(alice_client)
    assert services.delete_if_unused(file, in_use=True) is False
    assert File.objects.filter(pk=file.pk).exists()
    assert len(file_storage.names()) == 2


def test_delete_if_unused_removes_the_row_and_after_the_commit_the_objects(
    alice_client, file_storage, django_capture_on_commit_callbacks
):
    file = upload_as(alice_client)
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        assert services.delete_if_unused(file, in_use=False) is True
        assert not File.objects.filter(pk=file.pk).exists()
        assert len(file_storage.names()) == 2  # not before the commit
    assert len(callbacks) == 1
    assert file_storage.names() == set()
    response = alice_client.get(services.file_url(file))
    assert response.status_code == 404


def test_a_rolled_back_deletion_keeps_the_stored_objects(
    alice_client, file_storage, django_capture_on_commit_callbacks
):
    file = upload_as(alice_client)
    pk = file.pk

    def recall_that_fails() -> None:
        with transaction.atomic():
            services.delete_file(file)
            raise RuntimeError("the recall failed")

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
    ):
        recall_that_fails()
    assert callbacks == []
    assert File.objects.filter(pk=pk).exists()
    assert len(file_storage.names()) == 2


def test_a_failing_store_on_delete_is_logged_and_the_row_stays_deleted(
    alice_client, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    file = upload_as(alice_client)
    storage = services.file_storage()

    def broken(name):
        raise OSError("store unreachable")

    monkeypatch.setattr(type(storage), "delete", lambda self, name: broken(name))
    with django_capture_on_commit_callbacks(execute=True):
        services.delete_file(file)
    assert not File.objects.filter(pk=file.pk).exists()
    assert "event=file_delete_failed" in caplog.text


# purge_uploads


def test_purge_deletes_old_unsent_uploads_and_their_objects_only(
    alice_client, file_storage, django_capture_on_commit_callbacks
):
    old_unsent = upload_as(alice_client, "old.png")
    old_sent = upload_as(alice_client, "sent.png")
    new_unsent = upload_as(alice_client, "new.png")
    age(old_unsent, 86400 + 60)
    age(old_sent, 86400 + 60)
    services.mark_sent(old_sent)
    age(new_unsent, 86400 - 60)
    with django_capture_on_commit_callbacks(execute=True):
        call_command("purge_uploads")
    assert set(File.objects.values_list("name", flat=True)) == {"sent.png", "new.png"}
    kept = {name for file in File.objects.all() for name in (file.stored_name, file.thumb_name)}
    assert file_storage.names() == kept


def test_purge_takes_its_age_from_older_than(alice_client, capsys):
    file = upload_as(alice_client)
    age(file, 120)
    call_command("purge_uploads", "--older-than", "300")
    assert File.objects.filter(pk=file.pk).exists()
    call_command("purge_uploads", "--older-than", "60")
    assert not File.objects.exists()
    assert "purged 1 unsent upload(s)" in capsys.readouterr().out


def test_purge_works_in_batches_of_a_fixed_number_of_queries(
    alice_client, monkeypatch, django_assert_num_queries
):
    monkeypatch.setattr(services, "PURGE_BATCH", 2)
    for index in range(5):
        age(File.objects.get(pk=uploaded(alice_client, b"x", f"{index}.txt")["id"]), 90000)
    # Per batch (three of them): savepoint, pick the batch (locked), collect it, unlink
    # the messages that carried them (none here), delete it, release; then an empty pick
    # ends it.
    with django_assert_num_queries(3 * 6 + 3):
        assert services.purge_unsent(older_than=86400) == 5
    assert not File.objects.exists()


def test_purge_refuses_a_negative_age(db):
    with pytest.raises(CommandError, match="must not be negative"):
        call_command("purge_uploads", "--older-than", "-1")


# The admin and cascades


@pytest.fixture
def moderator_client(client, make_user):
    staff = make_user("moderator")
    staff.is_staff = staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    return client


def test_the_admin_lists_files_with_owner_name_size_mime_and_sent(moderator_client, alice_client):
    file = upload_as(alice_client, "holiday.png")
    services.mark_sent(file)
    page = moderator_client.get("/admin/files/file/").content.decode()
    for shown in ("holiday.png", "alice", "image/png", str(file.size)):
        assert shown in page
    assert moderator_client.get(f"/admin/files/file/{file.pk}/change/").status_code == 200
    assert moderator_client.get("/admin/files/file/add/").status_code == 403


def test_the_admin_delete_action_removes_the_stored_objects(
    moderator_client, alice_client, file_storage, django_capture_on_commit_callbacks
):
    files = [upload_as(alice_client, f"{index}.png") for index in range(2)]
    kept = upload_as(alice_client, "kept.png")
    with django_capture_on_commit_callbacks(execute=True):
        response = moderator_client.post(
            "/admin/files/file/",
            {"action": "delete_selected", "_selected_action": [f.pk for f in files], "post": "yes"},
        )
    assert response.status_code == 302
    assert list(File.objects.all()) == [kept]
    assert file_storage.names() == {kept.stored_name, kept.thumb_name}


def test_deleting_a_user_deletes_their_files_and_objects(
    alice_client, alice, file_storage, django_capture_on_commit_callbacks
):
    upload_as(alice_client)
    with django_capture_on_commit_callbacks(execute=True):
        alice.delete()
    assert not File.objects.exists()
    assert file_storage.names() == set()
