"""What `roomguard audit` reports about a homeserver whose rooms hold markings that the policy refuses today: every
one of them in the exposed rooms, nothing else, and never a word of what they say."""

from __future__ import annotations

import html
import json
from collections import Counter
from datetime import datetime, timezone

import world as world_module
from audit import EXIT_FINDINGS, Mismatches, finding_target

#: State events that carry text: the policy is asked about them as sends (the Synapse module does the same), and a
#: finding on one may say so (`send`) or say what it is (`state`).
STATE_TYPES = {"m.room.topic", "m.room.name"}


def parse_date(value: str) -> int:
    """An RFC 3339 instant, in ms since the epoch."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert parsed.tzinfo is not None, f"{value!r} has no offset"
    return round(parsed.timestamp() * 1000)


def test_the_audit_finds_every_planted_marking_in_exposed_rooms_and_nothing_else(exposed_audit, world):
    """Every marking planted in an exposed room is exactly one finding, whatever carried it: a body, an HTML body
    alone, a stable and an unstable poll, an edit's new content, a topic, a room name, a PDF, a DOCX, an ODT, a text
    file, a scanned picture; no ordinary message (the policy's tricky precision corpus among them), no ordinary file,
    no ciphertext, no event of the private encrypted room is one. The run exits 1: findings remain."""
    run = exposed_audit
    assert run.returncode == EXIT_FINDINGS, run.describe()
    truth = {(i.kind, i.target): i for i in world.ground_truth()}
    assert {(i.kind, i.target) for i in world.expected()} == set(truth), "the world's own ground truth"
    found = Counter((f.get("kind"), finding_target(f)) for f in run.findings)
    duplicated = {k: n for k, n in found.items() if n > 1}
    assert not duplicated, f"reported more than once: {duplicated}"
    missed = {truth[k].key: k for k in set(truth) - set(found)}
    extra = set(found) - set(truth)
    planted = {(i.kind, i.target): i.key for i in world.items}
    assert not missed and not extra, (
        f"missed: {missed}\nreported but not planted markings: "
        f"{ {k: planted.get(k, 'not planted') for k in extra} }\n{run.describe()}"
    )


def test_each_finding_says_where_who_when_what_and_why_without_the_text(exposed_audit, world):
    """A finding names its room, event (and type) or file, its sender or uploader, its date (the event's
    origin_server_ts, for a file the time of the event that posted it, and the same instant in RFC 3339 UTC), the question the policy was
    asked, the marking's label, every reason of the deny with its rule, and the policy version: no text, and no
    remediation when none was asked for."""
    run = exposed_audit
    by_target = {i.target: i for i in world.ground_truth()}
    policy_version = run.totals["policy_version"]
    assert policy_version, run.totals
    wrong = Mismatches()
    for finding in run.findings:
        item = by_target[finding_target(finding)]
        room = world.rooms[item.room]
        what = f"finding on {item.key} ({item.kind})"
        wrong.check(what, "room_id", finding.get("room_id"), room.room_id)
        wrong.check(what, "kind", finding.get("kind"), item.kind)
        wrong.check(what, "classification", finding.get("classification"), item.classification)
        wrong.check(what, "sender", finding.get("sender"), item.sender)
        wrong.check(what, "policy_version", finding.get("policy_version"), policy_version)
        wrong.check(what, "remediation", finding.get("remediation"), None)
        reasons = finding.get("reasons") or []
        wrong.check(what, "reason codes", {r["code"] for r in reasons}, world.reasons(item))
        wrong.check(what, "reason rules", {r["code"]: r["rule"] for r in reasons},
                    {r["code"]: world_module.RULE_OF.get(r["code"]) for r in reasons})
        label = "the time of the event that posted the file" if item.kind == "media" else "the event's origin_server_ts"
        wrong.check(what, f"origin_server_ts ({label})", finding.get("origin_server_ts"), item.ts)
        date = finding.get("date") or ""
        wrong.check(what, "date", date, f"{item.ts} ms in UTC", ok=date.endswith(("Z", "+00:00")) and (
            item.ts - 1000 < parse_date(date) <= item.ts))
        if item.kind == "media":
            wrong.check(what, "mxc", finding.get("mxc"), item.mxc)
            wrong.check(what, "action", finding.get("action"), "upload")
            # The file's own event, when the audit saw it.
            wrong.check(what, "event_id", finding.get("event_id"), item.event_id,
                        ok=finding.get("event_id") in (None, item.event_id))
        else:
            wrong.check(what, "event_id", finding.get("event_id"), item.event_id)
            wrong.check(what, "event_type", finding.get("event_type"), item.event_type)
            wrong.check(what, "mxc", finding.get("mxc"), None)
            actions = ("send", "state") if item.event_type in STATE_TYPES else ("send",)
            wrong.check(what, "action", finding.get("action"), actions, ok=finding.get("action") in actions)
        # The fields of the contract, and no others (finding.rs).
        extra = set(finding) - {
            "type", "room_id", "kind", "event_id", "event_type", "mxc", "sender", "origin_server_ts", "date",
            "action", "classification", "reasons", "policy_version", "remediation",
        }
        wrong.check(what, "fields outside the contract", extra, set())
    wrong.assert_none()


def test_no_output_carries_a_word_of_what_was_planted(exposed_audit, world):
    """Neither the NDJSON nor the diagnostics on stderr nor the HTML report contain any planted text: not a marked
    message, not an ordinary one, not a topic or a room name, not a file's content; as written, JSON-escaped or
    HTML-escaped. The made-up project names of the marked texts are not there either, even alone."""
    outputs = {
        "stdout": exposed_audit.stdout,
        "stderr": exposed_audit.stderr,
        "report.html": exposed_audit.html.read_text(errors="replace"),
    }
    assert outputs["stdout"].strip(), exposed_audit.describe()
    leaks = []
    for name, text in outputs.items():
        for planted in world.all_texts:
            forms = {planted, json.dumps(planted)[1:-1], json.dumps(planted, ensure_ascii=False)[1:-1],
                     html.escape(planted), html.escape(planted, quote=False)}
            if any(form in text for form in forms):
                leaks.append((name, planted))
        for word in world.secret_words:
            forms = {word, json.dumps(word)[1:-1], html.escape(word)}
            if any(form in text for form in forms):
                leaks.append((name, word))
    assert not leaks, leaks


def test_each_room_line_says_why_the_room_is_exposed_and_who_is_in_it(exposed_audit, world):
    """`--rooms exposed` (the default) reads the five exposed rooms and only them; each room line says why it is
    exposed (public join rule, published, world-readable, not encrypted), its settings, its members by role (the
    external account counted in the public room), and its findings: how many, of which marking, the first and the
    last one's dates (events' origin_server_ts, files' posting events')."""
    run = exposed_audit
    exposed = {r.room_id: r for r in world.exposed_rooms}
    assert {r["room_id"] for r in run.rooms} == set(exposed), run.describe()
    assert world.rooms["private_encrypted"].room_id not in exposed
    expected = world.expected()
    wrong = Mismatches()
    for room_id, spec in exposed.items():
        line = run.room(room_id)
        what = f"room {spec.key}"
        wrong.check(what, "exposure", sorted(line.get("exposure", [])), sorted(spec.exposure))
        wrong.check(what, "join_rule", line.get("join_rule"), spec.join_rule)
        wrong.check(what, "history_visibility", line.get("history_visibility"), spec.history_visibility)
        wrong.check(what, "encrypted", line.get("encrypted"), spec.encrypted)
        wrong.check(what, "published", line.get("published"), spec.published)
        wrong.check(what, "members", line.get("members"), len(spec.members))
        external = 1 if world.users["ext"].user_id in spec.members else 0
        by_role = line.get("members_by_role", {})
        wrong.check(what, "members_by_role.external", by_role.get("external", 0), external)
        wrong.check(what, "members_by_role.agent", by_role.get("agent", 0), len(spec.members) - external)
        wrong.check(what, "members_from_other_servers", line.get("members_from_other_servers"), 0)
        mine = [i for i in expected if i.room == spec.key]
        wrong.check(what, "findings", line.get("findings"), len(mine))
        wrong.check(what, "findings_by_classification", line.get("findings_by_classification"),
                    dict(Counter(i.classification for i in mine)))
        for field, ts in (("first_finding", min(i.ts for i in mine)), ("last_finding", max(i.ts for i in mine))):
            date = line.get(field) or ""
            wrong.check(what, field, date, f"{ts} ms", ok=bool(date) and ts - 1000 < parse_date(date) <= ts)
        files = [i for i in world.items if i.room == spec.key and i.kind == "media"]
        wrong.check(what, "files_read", line.get("files_read"), len(files))
        events = [i for i in world.items if i.room == spec.key and i.kind == "event"]
        wrong.check(what, "events_read", line.get("events_read"), f">= {len(events)}",
                    ok=line.get("events_read", 0) >= len(events))
        wrong.check(what, "errors", line.get("errors"), [])
        wrong.check(what, "risk", line.get("risk"), "> 0", ok=(line.get("risk") or 0) > 0)
        recommendations = line.get("recommendations")
        wrong.check(what, "recommendations", recommendations, "a list of {code, message}",
                    ok=isinstance(recommendations, list)
                    and all({"code", "message"} <= set(r) for r in recommendations))
    wrong.assert_none()
    # Room lines carry identifiers, never the rooms' names or topics.
    names = ["Salon des projets", "Équipe budget", "Cellule communication", "Salon ouvert chiffré", "Annonces"]
    assert not [n for n in names if n in run.stdout], "a room's name is text: never reported"


def test_the_totals_line_comes_last_and_adds_up(exposed_audit, world):
    """Findings come before their room's line, and one totals line ends the output: the homeserver, the rooms listed
    (every room of the server) and audited (the exposed ones), what was read, the findings by marking, complete."""
    run = exposed_audit
    assert run.lines[-1]["type"] == "totals", run.describe()
    totals = run.totals
    seen_rooms = set()
    for line in run.lines:
        if line["type"] == "room":
            seen_rooms.add(line["room_id"])
        elif line["type"] == "finding":
            assert line["room_id"] not in seen_rooms, f"a finding after its room's line: {line}"
    expected = world.expected()
    assert totals["homeserver"].rstrip("/") == world.synapse.base_url, totals
    assert totals["rooms_listed"] == len(world.rooms), totals
    assert totals["rooms_audited"] == len(world.exposed_rooms), totals
    assert totals["findings"] == len(expected) == len(run.findings), totals
    assert totals["findings_by_classification"] == dict(Counter(i.classification for i in expected)), totals
    assert totals["events_read"] == sum(r["events_read"] for r in run.rooms), totals
    assert totals["files_read"] == sum(r["files_read"] for r in run.rooms), totals
    assert totals["bytes_read"] == sum(r["bytes_read"] for r in run.rooms), totals
    assert totals["complete"] is True, totals
    assert not totals.get("remediations"), totals
    assert parse_date(totals["started_at"]) <= parse_date(totals["finished_at"]), totals
    assert abs(parse_date(totals["finished_at"]) - datetime.now(timezone.utc).timestamp() * 1000) < 3_600_000
