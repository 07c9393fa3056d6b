"""An audit that acts, killed with SIGKILL in the middle (a lost host, an OOM kill), then resumed from its journal:
it completes, every finding is remediated once and only once, and rooms it had finished are not read again.

Its own homeserver (many marked messages in public rooms), so that it neither sees nor changes the shared world."""

from __future__ import annotations

import json
import shutil
import os
import signal
import subprocess
import time
import urllib.parse
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

import world as world_module
from audit import EXIT_CLEAN, Auditor, finding_target, read_journal
from conftest import start_synapse

ROOMS = 8
MARKED_PER_ROOM = 20
ORDINARY_PER_ROOM = 5


@pytest.fixture(scope="module")
def crowded(tmp_path_factory, roomguard_bin, policies):
    """A homeserver of ROOMS public rooms, each with MARKED_PER_ROOM marked messages (two senders), ORDINARY_PER_ROOM
    ordinary ones and one marked text file."""
    homeserver = None
    try:
        homeserver = start_synapse(tmp_path_factory.mktemp("synapse-resume"), "synapse-resume")
        admin = homeserver.register("auditeur", admin=True)
        alice, bob = homeserver.register("alice"), homeserver.register("bob")
        token_file = tmp_path_factory.mktemp("secrets-resume") / "admin-token"
        token_file.write_text(admin.token)

        def fill(n):
            spec = world_module.RoomSpec(f"crowded{n}", "public", False, "shared", False)
            room_id = world_module.create_room(alice, spec, f"Salon {n}")
            assert bob.join(room_id).status == 200
            marked, ordinary = [], []
            for k in range(MARKED_PER_ROOM + ORDINARY_PER_ROOM):
                sender = alice if k % 2 else bob
                if k < MARKED_PER_ROOM:
                    body = f"DIFFUSION RESTREINTE - relevé {n}.{k}"
                    marked.append((world_module.send_event(sender, room_id, "m.room.message",
                                                           world_module.text_message(body)), sender.user_id))
                else:
                    body = f"Rappel : point hebdo demain 9 h 30 ({n}.{k})"
                    ordinary.append(world_module.send_event(sender, room_id, "m.room.message",
                                                            world_module.text_message(body)))
            data = world_module.plain_text_file(True, f"numéro {n}")
            mxc = world_module.upload(alice, data, f"releve-{n}.txt", "text/plain")
            world_module.send_event(alice, room_id, "m.room.message",
                                    {"msgtype": "m.file", "body": f"releve-{n}.txt", "url": mxc})
            return room_id, marked, ordinary, mxc

        with ThreadPoolExecutor(ROOMS) as pool:
            rooms = list(pool.map(fill, range(ROOMS)))
        auditor = Auditor(roomguard_bin, homeserver.base_url, token_file, policies,
                          tmp_path_factory.mktemp("audit-resume"))
        yield homeserver, admin, alice, auditor, rooms
    finally:
        if homeserver is not None:
            homeserver.stop()


def journal_progress(path):
    """(rooms finished, outcomes written after the first room was finished) in the journal so far."""
    lines = read_journal(path)
    rooms, after = 0, 0
    for line in lines:
        if line.get("type") == "room":
            rooms += 1
        elif line.get("type") == "done" and rooms:
            after += 1
    return rooms, after


def messages_reads(log_text: str) -> Counter:
    """Room ids whose history was paged through the admin API, per Synapse's access log."""
    reads = Counter()
    for line in log_text.splitlines():
        marker = "/_synapse/admin/v1/rooms/"
        if "Processed request" not in line or marker not in line or "/messages" not in line:
            continue
        path = line.split(marker, 1)[1].split("/messages", 1)[0]
        reads[urllib.parse.unquote(path)] += 1
    return reads


def test_killed_mid_run_then_resumed_remediates_each_finding_exactly_once(crowded, tmp_path):
    """`--apply --journal J --concurrency 1`, SIGKILLed once J shows a finished room and outcomes past it; then the
    same command with `--resume`: it exits 0; its report lists every marked message and file, each remediated
    (`done`, or `already` for one the killed run had acted on); on the homeserver each marked message has exactly one
    redaction and each marked file answers 404, ordinary messages untouched; the journal has exactly one final
    outcome (`done` or `already`) per target and no failure; and the resumed run did not page again through a room
    the killed one had finished."""
    homeserver, admin, alice, auditor, rooms = crowded
    journal = tmp_path / "journal.ndjson"
    args = ("--remediate", "redact-events,quarantine-media", "--apply", "--journal", str(journal),
            "--concurrency", "1", "--progress", "none")
    first_out = tmp_path / "first.ndjson"
    with open(first_out, "wb") as out, open(tmp_path / "first.stderr", "wb") as err:
        proc = subprocess.Popen(auditor.command(*args), stdout=out, stderr=err, cwd=auditor.workdir)
    world_module.harness._register_pid("audit-first", proc.pid)
    try:
        deadline = time.monotonic() + 300
        while True:
            finished, outcomes_after = journal_progress(journal)
            if finished >= 1 and outcomes_after >= 2:
                os.kill(proc.pid, signal.SIGKILL)
                break
            assert proc.poll() is None, (
                f"the audit ended (exit {proc.returncode}) before it could be interrupted: "
                f"{finished} rooms, {outcomes_after} outcomes after the first\n"
                f"{(tmp_path / 'first.stderr').read_text()[-2000:]}"
            )
            assert time.monotonic() < deadline, "no room finished within 300 s"
            time.sleep(0.005)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        world_module.harness._unregister_pid("audit-first")
    assert proc.returncode == -signal.SIGKILL
    before = read_journal(journal)
    finished_rooms = {line["summary"]["room_id"] for line in before if line["type"] == "room"}
    assert finished_rooms and len(finished_rooms) < ROOMS, finished_rooms
    log_offset = homeserver.log_path.stat().st_size

    run = auditor.run(*args, "--resume")
    # What the resumed run read, before this test reads anything itself.
    reads = messages_reads(homeserver.log_path.read_bytes()[log_offset:].decode(errors="replace"))

    # First what happened on the homeserver: each marked message redacted once, each marked file quarantined.
    marked = {event_id: sender for _, events, _, _ in rooms for event_id, sender in events}
    files = {mxc for *_, mxc in rooms}
    targets = set(marked) | files
    for room_id, events, ordinary, mxc in rooms:
        history = world_module.room_events(homeserver, admin.token, room_id)
        redactions = Counter(world_module.redaction_targets(history))
        assert redactions == Counter({event_id: 1 for event_id, _ in events}), (room_id, redactions, run.describe())
        for event_id, _ in events:
            status, event = world_module.client_event(homeserver, alice.token, room_id, event_id)
            assert status == 200 and event["content"] == {}, (event_id, event)
        for event_id in ordinary:
            status, event = world_module.client_event(homeserver, alice.token, room_id, event_id)
            assert status == 200 and event["content"].get("body"), (event_id, event)
        assert alice.download(mxc)[0] == 404, mxc

    raw = journal.read_text().splitlines()
    lines = read_journal_allowing_one_torn_line(raw, len(before))
    resumed = [line for line in lines if line["type"] == "run"]
    assert len(resumed) == 2 and resumed[1].get("resumed") is True, resumed
    assert lines[-1]["type"] == "end", lines[-1]
    outcomes = [line for line in lines if line["type"] == "done"]
    assert not [line for line in outcomes if line["status"] not in ("done", "already")], outcomes
    per_target = Counter(line["target"] for line in outcomes)
    assert set(per_target) == targets, set(per_target) ^ targets
    assert all(n == 1 for n in per_target.values()), {t: n for t, n in per_target.items() if n != 1}
    intents = {line["target"] for line in lines if line["type"] == "intent"}
    assert intents == targets

    assert not set(reads) & finished_rooms, f"finished rooms read again: {set(reads) & finished_rooms}"
    assert set(reads) == {room_id for room_id, *_ in rooms} - finished_rooms, reads

    # Last, what the resumed run reported: the whole run, every finding remediated, nothing left.
    assert run.returncode == EXIT_CLEAN, run.describe()
    assert {finding_target(f) for f in run.findings} == targets, run.describe()
    statuses = Counter(f["remediation"]["status"] for f in run.findings)
    assert set(statuses) <= {"done", "already"}, statuses
    assert sum(run.totals["remediations"].get(s, 0) for s in ("done", "already")) == len(targets), run.totals
    assert run.totals["complete"] is True, run.totals


def read_journal_allowing_one_torn_line(raw: list[str], at: int) -> list[dict]:
    """The journal after the resume: every line JSON, except at most one torn by the kill, where the kill left it."""
    lines, torn = [], []
    for n, text in enumerate(raw):
        try:
            lines.append(json.loads(text))
        except ValueError:
            torn.append(n)
    assert len(torn) <= 1 and all(n == at for n in torn), f"unreadable journal lines {torn} (kill after line {at})"
    return lines


def test_a_redaction_made_meanwhile_is_already_done_and_not_repeated(crowded, tmp_path):
    """A dry run with a journal; then a moderator (here the sender) redacts one of the marked messages by hand; then
    `--apply --resume`: the journal's rooms are not read again, the event redacted meanwhile is `already` (the audit
    looks at each event, redactions applied, before acting), the others are `done`, and each marked message has
    exactly one redaction."""
    homeserver, admin, alice, auditor, _ = crowded
    room_id = world_module.create_room(alice, world_module.RoomSpec("late", "public", False, "shared", False), "Tard")
    marked = [world_module.send_event(alice, room_id, "m.room.message",
                                      world_module.text_message(f"DIFFUSION RESTREINTE - note tardive {k}"))
              for k in range(3)]
    journal = tmp_path / "journal.ndjson"
    common = ("--rooms", room_id, "--remediate", "redact-events", "--journal", str(journal), "--progress", "none")
    dry = auditor.run(*common)
    assert {f["event_id"] for f in dry.findings} == set(marked), dry.describe()
    by_hand = alice.call("PUT", f"/rooms/{urllib.parse.quote(room_id)}/redact/{urllib.parse.quote(marked[0])}/by-hand",
                         {"reason": "moderation"})
    assert by_hand.status == 200, by_hand.body

    run = auditor.run(*common, "--apply", "--resume")
    assert run.returncode == EXIT_CLEAN, run.describe()
    status = {f["event_id"]: f["remediation"]["status"] for f in run.findings}
    assert status == {marked[0]: "already", marked[1]: "done", marked[2]: "done"}, run.describe()
    events = world_module.room_events(homeserver, admin.token, room_id)
    assert Counter(world_module.redaction_targets(events)) == Counter(marked), "one redaction per marked message"


def test_a_journal_is_not_resumed_with_another_policy(crowded, tmp_path, policies):
    """Findings decided by one policy are not acted on under another: `--resume` with a changed policy (another
    version) is refused, exit 64, saying to start a new journal; nothing is done."""
    homeserver, admin, alice, auditor, _ = crowded
    room_id = world_module.create_room(alice, world_module.RoomSpec("other", "public", False, "shared", False), "Autre")
    marked = world_module.send_event(alice, room_id, "m.room.message",
                                     world_module.text_message("DIFFUSION RESTREINTE - à ne pas rejouer"))
    journal = tmp_path / "journal.ndjson"
    common = ("--rooms", room_id, "--remediate", "redact-events", "--journal", str(journal), "--progress", "none")
    auditor.run(*common)
    changed = tmp_path / "policies"
    shutil.copytree(policies, changed)
    with open(changed / "rules.csv", "a") as rules:
        rules.write("\n# an edit: another policy version\n")
    run = auditor.run(*common, "--apply", "--resume", policies=changed, parse=False)
    assert run.returncode == 64, run.describe()
    assert "start a new journal" in run.stderr, run.stderr
    events = world_module.room_events(homeserver, admin.token, room_id)
    assert marked not in world_module.redaction_targets(events)
