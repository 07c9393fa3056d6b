"""The audit's other outputs and selections: `--format json` and `table`, `--out`, `--rooms all` and a list of rooms,
`--since` as a date and as an instant."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from audit import EXIT_CLEAN, EXIT_FINDINGS, finding_target, parse_ndjson


def targets(findings) -> set[tuple[str, str]]:
    return {(f["kind"], finding_target(f)) for f in findings}


def expected_targets(items) -> set[tuple[str, str]]:
    return {(i.kind, i.target) for i in items}


def test_format_json_is_one_report_object_with_what_ndjson_said(auditor, exposed_audit, world):
    """`--format json` prints one JSON object {totals, rooms, findings}: the same findings, rooms and totals as the
    NDJSON lines (the run's instants aside), rooms highest risk first, findings in the order of their rooms."""
    run = auditor.run("--format", "json")
    assert run.returncode == EXIT_FINDINGS, run.describe()
    report = json.loads(run.stdout)
    assert set(report) == {"totals", "rooms", "findings"}, list(report)
    assert targets(report["findings"]) == expected_targets(world.expected()), run.describe()

    def without_type(line):
        return {k: v for k, v in line.items() if k != "type"}

    assert sorted(json.dumps(without_type(f), sort_keys=True) for f in exposed_audit.findings) == sorted(
        json.dumps(f, sort_keys=True) for f in report["findings"]
    )
    assert {r["room_id"] for r in report["rooms"]} == {r.room_id for r in world.exposed_rooms}
    risks = [r["risk"] for r in report["rooms"]]
    assert risks == sorted(risks, reverse=True), risks
    order = [r["room_id"] for r in report["rooms"]]
    positions = [order.index(f["room_id"]) for f in report["findings"]]
    assert positions == sorted(positions), "findings by room, in the order of `rooms`"
    volatile = {"started_at", "finished_at", "type"}
    assert {k: v for k, v in report["totals"].items() if k not in volatile} == {
        k: v for k, v in exposed_audit.totals.items() if k not in volatile
    }


def test_format_table_is_for_people_and_out_writes_a_file(auditor, world, tmp_path):
    """`--format table` prints text for a terminal (not JSON) that names each audited room by its id and never a
    planted text; `--out FILE` writes the output there and nothing on stdout."""
    run = auditor.run("--format", "table")
    assert run.returncode == EXIT_FINDINGS, run.describe()
    assert not run.stdout.lstrip().startswith(("{", "[")), run.stdout[:500]
    for room in world.exposed_rooms:
        assert room.room_id in run.stdout, (room.key, run.stdout[:3000])
    assert world.rooms["private_encrypted"].room_id not in run.stdout
    assert not [t for t in world.all_texts + world.secret_words if t in run.stdout]

    out = tmp_path / "audit.ndjson"
    run = auditor.run("--format", "ndjson", "--out", str(out))
    assert run.returncode == EXIT_FINDINGS, run.describe()
    assert run.stdout == "", run.stdout[:500]
    lines = parse_ndjson(out.read_text())
    assert targets(l for l in lines if l["type"] == "finding") == expected_targets(world.expected())
    assert lines[-1]["type"] == "totals"


def test_rooms_all_reads_the_private_encrypted_room_too(auditor, world):
    """`--rooms all` reads every room of the homeserver: the private encrypted one too, whose line says it is not
    exposed. There the policy refuses what it refuses in an encrypted room: plaintext messages (PLAINTEXT_IN_ENCRYPTED
    _ROOM, for the marked message and the file's event) and the marked file (refused in the clear anywhere), never
    for being public or unencrypted; its ciphertext is no finding. The file's event carries no marking: its refusal
    is counted in the room's `other_denials`, not reported as a finding."""
    run = auditor.run("--rooms", "all")
    assert run.returncode == EXIT_FINDINGS, run.describe()
    everything = list(world.rooms.values())
    assert {r["room_id"] for r in run.rooms} == {r.room_id for r in everything}, run.describe()
    private = world.rooms["private_encrypted"]
    line = run.room(private.room_id)
    assert line["exposure"] == [], line
    assert line["encrypted"] is True and line["join_rule"] == "invite" and line["published"] is False, line
    expected = world.expected(everything)
    assert targets(run.findings) == expected_targets(expected), run.describe()
    by_target = {i.target: i for i in expected}
    for finding in run.findings:
        if finding["room_id"] == private.room_id:
            item = by_target[finding_target(finding)]
            codes = {r["code"] for r in finding["reasons"]}
            assert codes == world.reasons(item), (item.key, finding)
            assert not codes & {"CLASSIFIED_IN_PUBLIC_ROOM", "CLASSIFIED_IN_UNENCRYPTED_ROOM"}, finding
    unmarked = [i for i in world.refused([private]) if not i.marked]
    assert unmarked, "the private encrypted room has a refused event without a marking"
    assert line["other_denials"].get("PLAINTEXT_IN_ENCRYPTED_ROOM", 0) >= len(unmarked), line
    assert not targets(run.findings) & expected_targets(unmarked), run.describe()
    assert run.totals["rooms_audited"] == run.totals["rooms_listed"] == len(everything)


def test_a_room_list_reads_exactly_those_rooms(auditor, world):
    """`--rooms !a:server,!b:server` reads those rooms and no other, exposed or not."""
    chosen = [world.rooms["private_unencrypted"], world.rooms["private_encrypted"]]
    run = auditor.run("--rooms", ",".join(r.room_id for r in chosen))
    assert run.returncode == EXIT_FINDINGS, run.describe()
    assert {r["room_id"] for r in run.rooms} == {r.room_id for r in chosen}, run.describe()
    assert targets(run.findings) == expected_targets(world.expected(chosen)), run.describe()
    assert run.totals["rooms_audited"] == 2


def test_since_an_instant_reads_only_what_came_after_it(auditor, world):
    """`--since` an RFC 3339 instant: what is older is not read, so only the markings planted after it are found
    (a message and a file in the public room, a message in the private unencrypted one), each dated after it."""
    run = auditor.run("--since", world.since_rfc3339)
    assert run.returncode == EXIT_FINDINGS, run.describe()
    expected = world.expected(since_ms=world.since_ms)
    assert {i.key for i in expected} == {"marked/pub/late", "marked/pub/late-txt", "marked/priv/late"}
    assert targets(run.findings) == expected_targets(expected), run.describe()
    assert all(f["origin_server_ts"] >= world.since_ms for f in run.findings)
    early_events = sum(1 for i in world.items if i.kind == "event" and not i.late)
    assert run.totals["events_read"] < early_events, run.totals


def test_since_a_date(auditor, world):
    """`--since YYYY-MM-DD`: yesterday's date reads everything (the same findings as without it); tomorrow's reads
    nothing, finds nothing, and exits 0."""
    today = datetime.now(timezone.utc).date()
    run = auditor.run("--since", (today - timedelta(days=1)).isoformat())
    assert run.returncode == EXIT_FINDINGS, run.describe()
    assert targets(run.findings) == expected_targets(world.expected()), run.describe()

    run = auditor.run("--since", (today + timedelta(days=1)).isoformat())
    assert run.returncode == EXIT_CLEAN, run.describe()
    assert run.findings == [], run.describe()
    assert run.totals["findings"] == 0 and run.totals["events_read"] == 0, run.totals
