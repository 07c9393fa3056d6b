"""Remediation: `--remediate quarantine-media,redact-events` plans without `--apply`, and with it quarantines every
marked file and redacts every marked event (as its sender), exactly those, journaled; after it, an audit finds nothing.

These tests change the session's homeserver: they run after every test that only reads it (marker `changes_world`),
in this file's order."""

from __future__ import annotations

from collections import Counter

import pytest

import world as world_module
from audit import EXIT_CLEAN, EXIT_FINDINGS, finding_target, read_journal

pytestmark = pytest.mark.changes_world

REMEDIATE = ("--remediate", "quarantine-media,redact-events")


def download(world, item):
    """A member downloads a file through authenticated media (`/_matrix/client/v1/media/download`)."""
    return world.users["alice"].download(item.mxc)


def event_as_member(world, item) -> dict:
    status, event = world_module.client_event(
        world.synapse, world.users["alice"].token, world.rooms[item.room].room_id, item.event_id
    )
    assert status == 200, (item.key, status, event)
    return event


def assert_untouched(world, items) -> None:
    """Every event still has the content it was sent with; every file still downloads, byte for byte."""
    changed = []
    for item in items:
        if item.kind == "media":
            status, data = download(world, item)
            if (status, data) != (200, item.data):
                changed.append((item.key, f"download {status}"))
        else:
            event = event_as_member(world, item)
            if event["content"] != item.content or "redacted_because" in event.get("unsigned", {}):
                changed.append((item.key, event["content"]))
    assert not changed, changed


def test_a_dry_run_plans_each_remediation_and_changes_nothing(auditor, world):
    """Without `--apply`, each finding carries the remediation it would get (redact an event, quarantine a file),
    `planned`; the run exits 1 (the findings remain), and nothing changed on the homeserver: every event has its
    content, every file downloads, no room has a redaction."""
    run = auditor.run(*REMEDIATE)
    assert run.returncode == EXIT_FINDINGS, run.describe()
    expected = {i.target: i for i in world.expected()}
    assert {finding_target(f) for f in run.findings} == set(expected), run.describe()
    for finding in run.findings:
        item = expected[finding_target(finding)]
        remediation = finding.get("remediation")
        assert remediation is not None, finding
        assert remediation["action"] == ("quarantine" if item.kind == "media" else "redact"), finding
        assert remediation["status"] == "planned", finding
    assert_untouched(world, world.items)
    for room in world.rooms.values():
        events = world_module.room_events(world.synapse, auditor_token(auditor), room.room_id)
        assert world_module.redaction_targets(events) == [], room.key
    assert run.totals["remediations"] == {"planned": len(expected)}, run.totals


def auditor_token(auditor) -> str:
    return auditor.token_file.read_text().strip()


def test_apply_quarantines_and_redacts_exactly_the_findings(auditor, world, tmp_path):
    """With `--apply --journal J`: every finding is remediated (`done`), the run exits 0, and through the client
    API, as a member: each marked event is redacted (empty content) by one redaction sent by its own sender, each
    marked file answers 404; every other event (ordinary messages, the posts of marked files, edited originals) and
    every other file is as it was, in the private encrypted room too. The journal has a `run` line first, one
    `intent` and one `done` per finding, a `room` line per room and an `end` line last."""
    journal = tmp_path / "journal.ndjson"
    run = auditor.run(*REMEDIATE, "--apply", "--journal", str(journal))
    expected = {i.target: i for i in world.expected()}

    # First what happened on the homeserver, then the journal, then what the run reported.
    admin_token = auditor_token(auditor)
    for room in world.rooms.values():
        events = world_module.room_events(world.synapse, admin_token, room.room_id)
        redactions = Counter(world_module.redaction_targets(events))
        marked = {i.event_id for i in expected.values() if i.kind == "event" and i.room == room.key}
        assert set(redactions) == marked, (room.key, redactions, marked)
        assert all(n == 1 for n in redactions.values()), (room.key, redactions)
        senders = {e.get("redacts") or e["content"].get("redacts"): e["sender"] for e in events
                   if e["type"] == "m.room.redaction"}
        for item in expected.values():
            if item.kind == "event" and item.room == room.key:
                assert senders[item.event_id] == item.sender, f"{item.key} redacted as its sender"

    for item in expected.values():
        if item.kind == "media":
            status, _ = download(world, item)
            assert status == 404, (item.key, status)
        else:
            event = event_as_member(world, item)
            assert event["content"] == {}, (item.key, event)
    assert_untouched(world, [i for i in world.items if i.target not in expected])

    lines = read_journal(journal)
    assert lines[0]["type"] == "run" and lines[-1]["type"] == "end", (lines[:1], lines[-1:])
    intents = Counter(line["target"] for line in lines if line["type"] == "intent")
    outcomes = [line for line in lines if line["type"] == "done"]
    assert intents == Counter(set(expected)), intents
    assert Counter(line["target"] for line in outcomes) == Counter(set(expected)), outcomes
    assert all(line["status"] == "done" for line in outcomes), outcomes
    for line in outcomes:
        item = expected[line["target"]]
        assert line["action"] == ("quarantine" if item.kind == "media" else "redact"), line
        assert line["room_id"] == world.rooms[item.room].room_id, line
    assert {line["summary"]["room_id"] for line in lines if line["type"] == "room"} == {
        r.room_id for r in world.exposed_rooms
    }
    assert not [t for t in world.all_texts + world.secret_words if t in journal.read_text()], "text in the journal"

    assert run.returncode == EXIT_CLEAN, run.describe()
    assert {finding_target(f) for f in run.findings} == set(expected), run.describe()
    for finding in run.findings:
        assert finding["remediation"]["status"] == "done", finding
    assert run.totals["remediations"] == {"done": len(expected)}, run.totals


def test_after_remediation_an_audit_finds_nothing_and_exits_0(auditor, world):
    """The next audit reads the same rooms and finds nothing: the redacted events carry no text any more (a redacted
    message in an encrypted room is no plaintext message), the quarantined files are not served."""
    run = auditor.run()
    assert run.returncode == EXIT_CLEAN, run.describe()
    assert run.findings == [], run.describe()
    assert run.totals["findings"] == 0 and run.totals["complete"] is True, run.totals
    assert {r["room_id"] for r in run.rooms} == {r.room_id for r in world.exposed_rooms}
