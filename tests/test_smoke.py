import pytest
from channels.testing import WebsocketCommunicator

from chat.services import create_group
from rimsite.asgi import application


def test_rest_roundtrip(api_client, db):
    r = api_client.post(
        "/api/user/create",
        {"name": "A", "avatar": "", "email": "", "account": "alice", "password": "secret-pw"},
        format="json",
    )
    assert r.status_code == 200, r.json()
    uid = r.json()["data"]
    r = api_client.post(
        "/api/user/login", {"account": "alice", "password": "secret-pw"}, format="json"
    )
    token = r.json()["data"]
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    r = api_client.get(f"/api/user/get?uid={uid}")
    assert r.json() == {
        "ok": True,
        "code": 200,
        "msg": None,
        "data": {"id": uid, "name": "A", "avatar": "", "email": "", "account": "alice"},
    }
    assert api_client.get("/api/nope").json()["code"] == 404


@pytest.mark.django_db(transaction=True)
async def test_ws_roundtrip(make_user, token_for):
    from asgiref.sync import sync_to_async

    alice = await sync_to_async(make_user)("alice")
    bob = await sync_to_async(make_user)("bob")
    group = await sync_to_async(create_group)(
        creator=alice, name="g", avatar="", mode=2, members={bob.pk: 1}
    )
    ta = await sync_to_async(token_for)(alice)
    tb = await sync_to_async(token_for)(bob)
    a = WebsocketCommunicator(application, "/ws")
    b = WebsocketCommunicator(application, "/")
    assert (await a.connect())[0] and (await b.connect())[0]
    await a.send_json_to(
        {
            "event": "Login",
            "body": {
                "kind": "Text",
                "uid": alice.pk,
                "gid": 3,
                "content": ta,
                "clientMsgId": "l1",
                "msgId": None,
            },
        }
    )
    assert await a.receive_json_from() == {
        "clientMsgId": "l1",
        "serverMsgId": None,
        "kind": "Ack",
        "content": "Ok",
    }
    await b.send_json_to(
        {
            "event": "Login",
            "body": {
                "kind": "Text",
                "uid": bob.pk,
                "gid": 3,
                "content": tb,
                "clientMsgId": "l2",
                "msgId": None,
            },
        }
    )
    assert (await b.receive_json_from())["content"] == "Ok"
    await a.send_json_to(
        {
            "event": "Msg",
            "body": {
                "kind": "Text",
                "uid": alice.pk,
                "gid": group.pk,
                "content": "Hello World",
                "clientMsgId": "m1",
                "msgId": None,
            },
        }
    )
    ack = await a.receive_json_from()
    assert ack["content"] == "Ok" and isinstance(ack["serverMsgId"], int)
    push = await b.receive_json_from()
    assert (
        push["event"] == "Msg"
        and push["body"]["msgId"] == ack["serverMsgId"]
        and push["body"]["seq"] == 1
    )
    assert await a.receive_nothing()
    await a.send_to(text_data="nope")
    assert (await a.receive_json_from())["content"] == "bad_json"
    await a.disconnect()
    await b.disconnect()
