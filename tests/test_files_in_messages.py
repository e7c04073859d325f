"""Files in conversations (PROTOCOL.md §6.3): a Msg of kind Image or File carries the
URL of the sender's upload; it is marked sent (no longer purged) and linked to the
message; a recall deletes the upload once no other message carries it. An Image may
still carry any other URL, as rim's v1 clients send."""

import pytest
from django.core.files.storage import storages

from chat.models import Message
from chat.services import recall_message, send_message
from files.models import File
from infra.errors import InvalidInput
from tests.files_helpers import docx_bytes, image_bytes, stored_bytes, uploaded
from tests.rest_helpers import group_of, ok

pytestmark = pytest.mark.usefixtures("file_storage")


def sent(user, group, kind: str, content: str, cmid: str):
    return send_message(
        sender_id=user.pk, gid=group.pk, kind=kind, content=content, client_msg_id=cmid
    ).message


def test_an_image_message_carries_the_senders_upload_and_marks_it_sent(client_for, alice, bob):
    group = group_of(alice, bob)
    image = uploaded(client_for(alice), image_bytes(), "cat.png", "image/png")
    message = sent(alice, group, "Image", image["url"], "img-1")
    stored = Message.objects.get(pk=message.pk)
    assert (stored.file_id, stored.content) == (image["id"], image["url"])
    assert File.objects.get(pk=image["id"]).sent_at is not None
    entry = ok(client_for(bob), "message/history", {"gid": group.pk})[-1]
    assert (entry["msg"]["kind"], entry["msg"]["content"]) == ("Image", image["url"])


def test_a_file_message_carries_an_upload_and_nothing_else(client_for, alice, bob):
    group = group_of(alice, bob)
    document = uploaded(client_for(alice), docx_bytes(), "report.docx")
    assert sent(alice, group, "File", document["url"], "file-1").file.pk == document["id"]
    bobs = uploaded(client_for(bob), docx_bytes(), "bobs.docx")
    for content in ("https://example.org/report.docx", bobs["url"], document["url"] + "x"):
        with pytest.raises(InvalidInput):
            sent(alice, group, "File", content, f"bad-{content[-6:]}")
    # Nor is a document an image.
    with pytest.raises(InvalidInput):
        sent(alice, group, "Image", document["url"], "not-an-image")
    assert Message.objects.filter(kind="File").count() == 1


def test_an_image_may_still_be_any_url_as_rims_clients_send(alice, bob):
    message = sent(alice, group_of(alice, bob), "Image", "https://example.org/a.png", "v1-img")
    assert Message.objects.get(pk=message.pk).file_id is None


def test_a_recall_deletes_the_upload_once_no_other_message_carries_it(
    client_for, alice, bob, django_capture_on_commit_callbacks
):
    group = group_of(alice, bob)
    image = uploaded(client_for(alice), image_bytes(), "cat.png", "image/png")
    stored_name = File.objects.get(pk=image["id"]).stored_name
    first = sent(alice, group, "Image", image["url"], "twice-1")
    second = sent(alice, group, "Image", image["url"], "twice-2")
    with django_capture_on_commit_callbacks(execute=True):
        recall_message(user_id=alice.pk, gid=group.pk, msg_id=first.pk, client_msg_id="r-1")
    assert File.objects.filter(pk=image["id"]).exists()  # the second still carries it
    assert stored_bytes(stored_name)
    with django_capture_on_commit_callbacks(execute=True):
        recall_message(user_id=alice.pk, gid=group.pk, msg_id=second.pk, client_msg_id="r-2")
    assert not File.objects.filter(pk=image["id"]).exists()
    assert not storages["default"].exists(stored_name)
    assert Message.objects.get(pk=second.pk).content == ""
