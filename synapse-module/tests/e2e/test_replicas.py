"""End-to-end: roomguard as several replicas behind one DNS name (issue #13), e.g. a Kubernetes headless Service.

Three real roomguard processes listen on 127.0.0.1, 127.0.0.2 and 127.0.0.3, same port (as pods behind a headless
Service share the port and differ by address). A DNS server of the test (`tests/fake_dns.py`, real DNS over UDP)
answers the name `roomguard-headless.test` with those addresses, and the module dials
`dns://<that server>/roomguard-headless.test:<port>`. Which replica decided is read from each one's
`roomguard_decisions_total` metric.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from synapse_roomguard._proto.roomguard.v1 import policy_pb2 as pb
from synapse_roomguard.client import PolicyClient, RoomguardUnavailableError

from ..fake_dns import FakeDns
from ..unit.test_client import ThreadHopReactor
from .conftest import EXTERNAL_USER, MODULE_ROOT, required_path
from .harness import SERVER_NAME, Roomguard, Synapse, copy_policies_with_users, free_port
from .test_scenarios import MARKED, PLAIN, assert_denied, forum

pytestmark = pytest.mark.e2e

ADDRESSES = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
NAME = "roomguard-headless.test"
#: Generous: this file is about where calls go, not how fast (the deadline is tested in test_scenarios.py).
TIMEOUT_MS = 2000


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[list[Roomguard]]:
    """Three roomguards, one per address in `ADDRESSES`, on one gRPC port and one metrics port."""
    binary = required_path("ROOMGUARD_BIN")
    policies = copy_policies_with_users(
        required_path("ROOMGUARD_POLICIES", MODULE_ROOT.parent / "policies"),
        tmp_path / "policies",
        [f"{EXTERNAL_USER}, external"],
    )
    port, metrics_port = free_port(), free_port()
    started: list[Roomguard] = []
    try:
        for n, address in enumerate(ADDRESSES, start=1):
            replica = Roomguard(
                binary=binary,
                policies=policies,
                workdir=tmp_path,
                name=f"roomguard-replica-{n}",
                host=address,
                port=port,
                metrics_port=metrics_port,
            )
            replica.start()
            started.append(replica)
        yield started
    finally:
        for replica in started:
            replica.stop()


@pytest.fixture
def dns() -> Iterator[FakeDns]:
    server = FakeDns(NAME, ADDRESSES).start()
    yield server
    server.stop()


def message(body: str = PLAIN) -> pb.CheckMessageSendRequest:
    return pb.CheckMessageSendRequest(
        request_id="e2e-replicas",
        sender=pb.Subject(user_id=f"@alice:{SERVER_NAME}"),
        room=pb.Room(
            room_id=f"!forum:{SERVER_NAME}",
            join_rule=pb.JOIN_RULE_PUBLIC,
            history_visibility=pb.HISTORY_VISIBILITY_SHARED,
        ),
        message=pb.Message(event_type="m.room.message", msgtype="m.text", body=body),
    )


def decisions(replicas: list[Roomguard]) -> list[int]:
    return [r.decisions_total() if r.proc is not None else 0 for r in replicas]


def call_many(client: PolicyClient, reactor: ThreadHopReactor, n: int) -> list[object]:
    """`n` calls one after the other; each outcome (a response or a `RoomguardUnavailableError`)."""
    return [reactor.wait(client.check_message_send(message()))[0] for _ in range(n)]


@pytest.fixture
def client(dns: FakeDns, replicas: list[Roomguard]) -> Iterator[tuple[PolicyClient, ThreadHopReactor]]:
    reactor = ThreadHopReactor()
    policy_client = PolicyClient(
        dns.endpoint(replicas[0].port), timeout_s=TIMEOUT_MS / 1000, reconnect_backoff_max_s=0.5, reactor=reactor
    )
    yield policy_client, reactor
    policy_client.close()


def test_calls_are_spread_round_robin_over_every_address_of_the_name(
    client: tuple[PolicyClient, ThreadHopReactor], replicas: list[Roomguard], dns: FakeDns
) -> None:
    """One name resolving to three replicas: every call is answered, and each replica answers its share (round robin:
    once all three are connected, calls go to each in turn; at least a sixth each over 60 calls)."""
    policy_client, reactor = client
    before = decisions(replicas)
    outcomes = call_many(policy_client, reactor, 60)
    assert all(isinstance(o, pb.CheckMessageSendResponse) for o in outcomes), outcomes
    spread = [after - b for after, b in zip(decisions(replicas), before, strict=True)]
    assert sum(spread) == 60, spread
    assert min(spread) >= 10, spread
    assert dns.queries >= 1


def test_a_killed_replica_is_skipped(client: tuple[PolicyClient, ThreadHopReactor], replicas: list[Roomguard]) -> None:
    """A replica killed (SIGKILL: its connections reset) while the name still lists it: no call fails beyond one that
    was in flight on it (here none is, so at most one is allowed for the race with grpc noticing), and the two
    survivors answer everything that follows, both of them."""
    policy_client, reactor = client
    call_many(policy_client, reactor, 9)  # every replica connected and used
    replicas[2].kill()
    before = decisions(replicas)
    outcomes = call_many(policy_client, reactor, 40)
    failures = [o for o in outcomes if isinstance(o, RoomguardUnavailableError)]
    assert len(failures) <= 1, [f.status for f in failures]
    spread = [after - b for after, b in zip(decisions(replicas), before, strict=True)]
    assert spread[2] == 0
    assert spread[0] + spread[1] == 40 - len(failures), spread
    assert min(spread[:2]) >= 10, spread


def test_a_restarted_replica_gets_calls_again(
    client: tuple[PolicyClient, ThreadHopReactor], replicas: list[Roomguard]
) -> None:
    """A replica killed and started again at its address (a pod restarted in place): the module reconnects by itself
    (backoff at most `reconnect_backoff_max_ms`) and it gets its share again, no call failing meanwhile."""
    policy_client, reactor = client
    call_many(policy_client, reactor, 9)
    replicas[1].kill()
    assert all(isinstance(o, pb.CheckMessageSendResponse) for o in call_many(policy_client, reactor, 10)[1:])
    replicas[1].start()
    spread = [0, 0, 0]
    outcomes: list[object] = []
    while spread[1] == 0 and len(outcomes) < 2000:
        before = decisions(replicas)
        outcomes += call_many(policy_client, reactor, 10)
        spread = [after - b for after, b in zip(decisions(replicas), before, strict=True)]
    assert spread[1] > 0, "the restarted replica never got a call back"
    assert all(isinstance(o, pb.CheckMessageSendResponse) for o in outcomes)


def test_synapse_decides_through_the_replicas(
    dns: FakeDns, replicas: list[Roomguard], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A Synapse whose module `endpoint` is the DNS name: a marked message is refused with roomguard's reasons, plain
    ones are sent, and the decisions are spread over the three replicas."""
    homeserver = Synapse(
        workdir=tmp_path_factory.mktemp("synapse-replicas"),
        module_config={"endpoint": dns.endpoint(replicas[0].port), "timeout_ms": TIMEOUT_MS},
        name="synapse-replicas",
    )
    homeserver.start()
    try:
        alice = homeserver.register("alice")
        room = forum(alice)
        before = decisions(replicas)
        for _ in range(12):
            assert alice.send_text(room, PLAIN).status == 200
        assert_denied(alice.send_text(room, MARKED), "CLASSIFIED_IN_UNENCRYPTED_ROOM", "CLASSIFIED_IN_PUBLIC_ROOM")
        spread = [after - b for after, b in zip(decisions(replicas), before, strict=True)]
        assert sum(spread) >= 13 and min(spread) > 0, spread
    finally:
        homeserver.stop()


def test_a_replica_added_to_the_name_gets_calls(dns: FakeDns, replicas: list[Roomguard]) -> None:
    """The name lists two replicas, then three (a pod added to the headless Service while every connection is
    healthy): the module resolves the name again on its own (a fresh channel every `DNS_REFRESH_S`, shortened here)
    and the third one gets calls, with no call failing meanwhile."""
    dns.addresses = ADDRESSES[:2]
    reactor = ThreadHopReactor()
    policy_client = PolicyClient(
        dns.endpoint(replicas[0].port),
        timeout_s=TIMEOUT_MS / 1000,
        reconnect_backoff_max_s=0.5,
        reactor=reactor,
        dns_refresh_s=0.5,
    )
    try:
        before = decisions(replicas)
        outcomes = call_many(policy_client, reactor, 20)
        assert decisions(replicas)[2] == before[2]  # not in DNS yet: no call
        dns.addresses = list(ADDRESSES)
        while decisions(replicas)[2] == before[2] and len(outcomes) < 5000:
            outcomes += call_many(policy_client, reactor, 10)
        assert decisions(replicas)[2] > before[2], "the added replica never got a call"
        assert all(isinstance(o, pb.CheckMessageSendResponse) for o in outcomes)
    finally:
        policy_client.close()


def test_a_replica_removed_from_the_name_gets_no_more_calls(dns: FakeDns, replicas: list[Roomguard]) -> None:
    """A pod removed from the Service but still running (terminating): once the module has resolved the name again,
    it gets no call any more, and no call fails."""
    reactor = ThreadHopReactor()
    policy_client = PolicyClient(
        dns.endpoint(replicas[0].port),
        timeout_s=TIMEOUT_MS / 1000,
        reconnect_backoff_max_s=0.5,
        reactor=reactor,
        dns_refresh_s=0.5,
    )
    try:
        outcomes = call_many(policy_client, reactor, 9)
        dns.addresses = ADDRESSES[:2]
        # Until 30 calls in a row leave the removed replica alone (bounded, so a regression fails instead of hanging).
        while len(outcomes) < 5000:
            before = decisions(replicas)[2]
            outcomes += call_many(policy_client, reactor, 30)
            if decisions(replicas)[2] == before:
                break
        assert decisions(replicas)[2] == before, "the removed replica kept getting calls"
        assert all(isinstance(o, pb.CheckMessageSendResponse) for o in outcomes)
    finally:
        policy_client.close()
