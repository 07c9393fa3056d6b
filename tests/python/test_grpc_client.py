"""An independent client: Python grpcio, stubs generated from proto/, calling the real `roomguard serve` binary."""

import subprocess
import tempfile
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from conftest import REPO, Server

AGENT = "@alice:agent.finances.tchap.gouv.fr"
EXTERNAL = "@bob:agent.externe.tchap.gouv.fr"


def send_request(pb, user=AGENT, join_rule="JOIN_RULE_PUBLIC", encrypted=False, body="Bonjour", **message):
    p = pb[0]
    return p.CheckMessageSendRequest(
        request_id="py-1",
        sender=p.Subject(user_id=user),
        room=p.Room(
            room_id="!forum:agent.finances.tchap.gouv.fr",
            join_rule=p.JoinRule.Value(join_rule),
            history_visibility=p.HISTORY_VISIBILITY_SHARED,
            encrypted=encrypted,
        ),
        message=p.Message(event_type=message.pop("event_type", "m.room.message"), msgtype="m.text", body=body, **message),
    )


def test_plain_message_in_public_forum_is_allowed(pb, stub):
    d = stub.CheckMessageSend(send_request(pb), timeout=5).decision
    assert d.effect == pb[0].EFFECT_ALLOW
    assert [r.code for r in d.reasons] == ["ALLOWED"]
    assert list(d.roles) == ["agent"]
    assert d.classification == "none"
    assert d.request_id == "py-1"
    assert d.policy_version.startswith("sha256:")


def test_marked_message_in_public_room_is_denied_with_every_reason(pb, stub):
    d = stub.CheckMessageSend(send_request(pb, body="Diffusion\u200bRestreinte"), timeout=5).decision
    assert d.effect == pb[0].EFFECT_DENY
    assert sorted(r.code for r in d.reasons) == ["CLASSIFIED_IN_PUBLIC_ROOM", "CLASSIFIED_IN_UNENCRYPTED_ROOM"]
    assert d.classification == "restricted"
    assert all(r.message and r.rule for r in d.reasons)


def test_external_user_in_public_room_is_denied(pb, stub):
    d = stub.CheckMessageSend(send_request(pb, user=EXTERNAL), timeout=5).decision
    assert [r.code for r in d.reasons] == ["EXTERNAL_IN_PUBLIC_ROOM"]
    assert list(d.roles) == ["external"]


def test_plaintext_in_encrypted_room_is_denied(pb, stub):
    d = stub.CheckMessageSend(send_request(pb, join_rule="JOIN_RULE_INVITE", encrypted=True), timeout=5).decision
    assert [r.code for r in d.reasons] == ["PLAINTEXT_IN_ENCRYPTED_ROOM"]


def test_room_publish_lists_every_reason(pb, stub):
    p = pb[0]
    req = p.CheckRoomPublishRequest(
        requester=p.Subject(user_id=AGENT, power_level=0),
        room=p.Room(room_id="!r:agent.finances.tchap.gouv.fr", join_rule=p.JOIN_RULE_INVITE,
                    history_visibility=p.HISTORY_VISIBILITY_SHARED, encrypted=True),
        visibility=p.DIRECTORY_VISIBILITY_PUBLIC,
    )
    d = stub.CheckRoomPublish(req, timeout=5).decision
    assert d.effect == p.EFFECT_DENY
    assert [r.code for r in d.reasons] == ["INSUFFICIENT_POWER_LEVEL", "ROOM_NOT_PUBLIC", "ENCRYPTED_ROOM_NOT_PUBLISHABLE"]
    req.visibility = p.DIRECTORY_VISIBILITY_PRIVATE
    d = stub.CheckRoomPublish(req, timeout=5).decision
    assert (d.effect, [r.code for r in d.reasons]) == (p.EFFECT_ALLOW, ["UNPUBLISH_ALLOWED"])


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda r: r.sender.ClearField("user_id"), "sender.user_id"),
        (lambda r: setattr(r.sender, "user_id", "@nobody"), "sender.user_id"),
        (lambda r: r.ClearField("room"), "room"),
        (lambda r: setattr(r.room, "room_id", "#alias:server"), "room.room_id"),
        (lambda r: setattr(r.room, "history_visibility", 0), "room.history_visibility"),
        (lambda r: setattr(r.message, "event_type", ""), "message.event_type"),
        (lambda r: setattr(r.message, "body", "x" * 70000), "message.body"),
    ],
)
def test_invalid_input_is_invalid_argument_naming_the_field(pb, stub, mutate, field):
    req = send_request(pb)
    mutate(req)
    with pytest.raises(grpc.RpcError) as err:
        stub.CheckMessageSend(req, timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().startswith(field + ":"), err.value.details()


def test_health_and_reflection(server):
    health = health_pb2_grpc.HealthStub(server.channel)
    for service in ("", "roomguard.v1.PolicyService"):
        status = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status
        assert status == health_pb2.HealthCheckResponse.SERVING
    db = ProtoReflectionDescriptorDatabase(server.channel)
    assert "roomguard.v1.PolicyService" in db.get_services()


def test_message_text_is_not_logged(pb, stub, server):
    marker = "Diffusion Restreinte projet-zebre-42"
    stub.CheckMessageSend(send_request(pb, body=marker, filename="zebre-42.pdf"), timeout=5)
    assert "zebre" not in server.log()


def test_sigterm_exits_zero(binary):
    s = Server(binary, REPO / "policies")
    assert s.stop() == 0
    assert "shutting down" in s.log()


def test_invalid_policy_exits_non_zero_naming_file_and_line(binary):
    with tempfile.TemporaryDirectory() as d:
        for f in (REPO / "policies").iterdir():
            if f.is_file():
                (Path(d) / f.name).write_bytes(f.read_bytes())
        rules = (Path(d) / "rules.csv").read_text()
        (Path(d) / "rules.csv").write_text(rules + "p, broken, send, r.msg.classified &&, deny, ALLOWED\n")
        out = subprocess.run([str(binary), "serve", "--listen", "127.0.0.1:0", "--policies", d],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode != 0
        line = len(rules.splitlines()) + 1
        assert f"rules.csv:{line}:" in out.stderr, out.stderr
        missing = subprocess.run([str(binary), "serve", "--listen", "127.0.0.1:0", "--policies", d + "/nope"],
                                 capture_output=True, text=True, timeout=30)
        assert missing.returncode != 0 and "nope" in missing.stderr


def test_sighup_reloads_and_a_broken_edit_is_refused(binary, pb):
    """An operator's reload: SIGHUP swaps a valid edit in; a broken one is refused and the old policy keeps serving."""
    import signal
    import time

    with tempfile.TemporaryDirectory() as d:
        for f in (REPO / "policies").iterdir():
            if f.is_file():
                (Path(d) / f.name).write_bytes(f.read_bytes())
        s = Server(binary, d)
        try:
            stub = pb[1].PolicyServiceStub(s.channel)
            status = lambda: stub.GetPolicyStatus(pb[0].GetPolicyStatusRequest(), timeout=5)
            first = status().policy_version
            rules = Path(d) / "rules.csv"
            rules.write_text(rules.read_text().replace(
                "p, send.allow, send, true, allow, ALLOWED",
                "p, send.no-text, send, r.msg.msgtype == \"m.text\", deny, ROOM_NOT_PUBLIC\np, send.allow, send, true, allow, ALLOWED"))
            s.proc.send_signal(signal.SIGHUP)
            deadline = time.time() + 5
            while status().policy_version == first and time.time() < deadline:
                time.sleep(0.05)
            second = status()
            assert second.policy_version != first and second.reloads_succeeded >= 1
            d2 = stub.CheckMessageSend(send_request(pb, join_rule="JOIN_RULE_INVITE"), timeout=5).decision
            assert [r.code for r in d2.reasons] == ["ROOM_NOT_PUBLIC"]

            rules.write_text("p, half-written, send, r.msg.\n")
            s.proc.send_signal(signal.SIGHUP)
            deadline = time.time() + 5
            while status().reloads_refused == 0 and time.time() < deadline:
                time.sleep(0.05)
            third = status()
            assert third.reloads_refused >= 1
            assert third.policy_version == second.policy_version
            assert "rules.csv:1:" in third.last_refused_error
            assert "rules.csv:1:" in s.log()
            assert s.proc.poll() is None, "the server survived the broken edit"
        finally:
            assert s.stop() == 0


def room(p, join_rule="JOIN_RULE_PUBLIC", **flags):
    return p.Room(room_id="!forum:agent.finances.tchap.gouv.fr", join_rule=p.JoinRule.Value(join_rule),
                  history_visibility=p.HISTORY_VISIBILITY_SHARED, **flags)


def test_room_join_is_decided(pb, stub):
    p = pb[0]
    d = stub.CheckRoomJoin(p.CheckRoomJoinRequest(user=p.Subject(user_id=EXTERNAL),
                                                  room=room(p, access_rule="unrestricted")), timeout=5).decision
    assert [r.code for r in d.reasons] == ["EXTERNAL_NEEDS_INVITE"]
    d = stub.CheckRoomJoin(p.CheckRoomJoinRequest(user=p.Subject(user_id=EXTERNAL), invited=True,
                                                  room=room(p, access_rule="unrestricted")), timeout=5).decision
    assert d.effect == p.EFFECT_ALLOW


def test_room_state_change_is_decided(pb, stub):
    p = pb[0]
    request = p.CheckRoomStateChangeRequest(
        sender=p.Subject(user_id=AGENT, power_level=100),
        room=room(p, "JOIN_RULE_INVITE", encrypted=True),
        proposed=room(p, "JOIN_RULE_PUBLIC", encrypted=True),
        event_type="m.room.join_rules",
    )
    d = stub.CheckRoomStateChange(request, timeout=5).decision
    assert [r.code for r in d.reasons] == ["ENCRYPTED_ROOM_CANNOT_BE_PUBLIC"]
    request.proposed.room_id = "!elsewhere:agent.finances.tchap.gouv.fr"
    with pytest.raises(grpc.RpcError) as err:
        stub.CheckRoomStateChange(request, timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().startswith("proposed.room_id:")
