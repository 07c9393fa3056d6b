"""The homeserver `roomguard audit` reads in the end-to-end suite, planted on a real Synapse (without the roomguard
module, so that marked content can be stored), and the ground truth of what is in it.

A `World` is six rooms, each a different exposure (public and published, public and encrypted, private and unencrypted,
world-readable, published though invite-only, private and encrypted), filled through the client-server API as members
would fill them: ordinary messages, tricky ordinary messages from the policy's own precision corpus, and markings in
every place a client puts text (a body, an HTML body only, a stable and an unstable poll, an edit's `m.new_content`, a
room topic, a room name) and in files of several formats (text, PDF, DOCX, ODT, a scanned JPEG read by OCR). Encrypted
rooms hold what encrypted rooms hold (`m.room.encryption` state, `m.room.encrypted` events), plus the few plaintext
events a test plants on purpose. Every planted event and file is a `Planted` with what the policy decides about it, so
that a test compares the audit's findings with this list by equality.

`policy_reasons` restates policies/rules.csv for the events planted here: it is the specification the expected
findings follow (a finding is an event or a file the policy refuses today), kept next to the world it describes.

Also used by scripts/bench-audit.py (`seed_bulk`), loaded by path.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def load_module(name: str, path: Path):
    """A module loaded by path under its own name (the harnesses of the suites are all called `harness`)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


harness = load_module("audit_e2e_synapse_harness", REPO / "synapse-module" / "tests" / "e2e" / "harness.py")
documents = load_module("audit_e2e_documents", REPO / "synapse-module" / "tests" / "e2e" / "documents.py")

SERVER_NAME = harness.SERVER_NAME
UNLIMITED = {"per_second": 100_000, "burst_count": 100_000}
#: Synapse settings of every homeserver the audit reads here: no rate limit stands between the seeding (or the audit's
#: redactions, made as each sender) and the homeserver; registration hashes with the fewest bcrypt rounds.
SYNAPSE_CONFIG = {
    "rc_media_create": UNLIMITED,
    "rc_admin_redaction": UNLIMITED,
    "rc_invites": {"per_room": UNLIMITED, "per_user": UNLIMITED, "per_issuer": UNLIMITED},
    "bcrypt_rounds": 4,
}

#: policies/rules.csv: the rule id of each reason code the planted content can meet.
RULE_OF = {
    "CLASSIFIED_IN_UNENCRYPTED_ROOM": "send.classified-unencrypted",
    "CLASSIFIED_IN_PUBLIC_ROOM": "send.classified-public",
    "EXTERNAL_IN_PUBLIC_ROOM": "send.external-public",
    "CLASSIFIED_IN_ROOM_STATE": "send.classified-state",
    "PLAINTEXT_IN_ENCRYPTED_ROOM": "send.plaintext-encrypted",
    "CLASSIFIED_DOCUMENT_IN_CLEAR": "upload.classified-in-clear",
}

#: crates/roomguard-core/src/policy/engine/attributes.rs NEVER_ENCRYPTED_TYPES, as far as the planted types go.
NEVER_ENCRYPTED = {"m.room.name", "m.room.topic", "m.room.member", "m.room.redaction"}

MEGOLM = "m.megolm.v1.aes-sha2"


# =========================================================================================================== rooms


@dataclass
class RoomSpec:
    """One room as created: its access settings, and so the exposure the audit must report."""

    key: str
    join_rule: str  # "public" or "invite"
    published: bool
    history_visibility: str  # "shared" or "world_readable"
    encrypted: bool
    room_id: str = ""
    #: Joined members' user ids (creator first).
    members: list[str] = field(default_factory=list)

    @property
    def is_public(self) -> bool:
        """policies' `r.room.is_public` (crates/roomguard-core/src/domain/room.rs)."""
        return self.join_rule == "public" or self.published or self.history_visibility == "world_readable"

    @property
    def exposure(self) -> set[str]:
        """The contract's `exposure`: why `--rooms exposed` selects it."""
        reasons = set()
        if self.join_rule == "public":
            reasons.add("public_join_rule")
        if self.published:
            reasons.add("published")
        if self.history_visibility == "world_readable":
            reasons.add("world_readable")
        if not self.encrypted:
            reasons.add("not_encrypted")
        return reasons

    @property
    def exposed(self) -> bool:
        return bool(self.exposure)


ROOM_SPECS = [
    RoomSpec("public_published", "public", True, "shared", False),
    RoomSpec("public_encrypted", "public", False, "shared", True),
    RoomSpec("private_unencrypted", "invite", False, "shared", False),
    RoomSpec("world_readable_encrypted", "invite", False, "world_readable", True),
    RoomSpec("published_encrypted", "invite", True, "shared", True),
    RoomSpec("private_encrypted", "invite", False, "shared", True),
]


# =========================================================================================================== planted


@dataclass
class Planted:
    """One event or file put into a room, with what the policy says of it."""

    key: str
    room: str  # RoomSpec.key
    kind: str  # "event" or "media"
    sender: str
    #: The marking's label, or "none".
    classification: str
    #: Every piece of text it carries (the audit must never print any of them).
    texts: list[str]
    event_type: str = ""
    content: dict[str, Any] = field(default_factory=dict)
    state_key: str | None = None
    event_id: str = ""
    mxc: str = ""
    data: bytes = b""
    #: Sent after the `since` instant.
    late: bool = False
    #: origin_server_ts (an event) or the upload time (a file), ms: filled in after seeding.
    ts: int = 0

    @property
    def marked(self) -> bool:
        return self.classification != "none"

    @property
    def target(self) -> str:
        """What a finding on it names and a remediation acts on: the event id, or the file's mxc URI."""
        return self.mxc if self.kind == "media" else self.event_id

    @property
    def has_text(self) -> bool:
        return any(self.texts)


def policy_reasons(room: RoomSpec, item: Planted, external: set[str]) -> set[str]:
    """The reason codes the shipped policy denies `item` for, in `room` as it is (empty: allowed). policies/rules.csv,
    restated for what is planted here: `send` for every event (never a membership: like the Synapse module, the audit
    does not ask about joins), `upload` for every file."""
    if item.kind == "media":
        return {"CLASSIFIED_DOCUMENT_IN_CLEAR"} if item.marked else set()
    codes = set()
    if item.marked and not room.encrypted:
        codes.add("CLASSIFIED_IN_UNENCRYPTED_ROOM")
    if item.marked and room.is_public:
        codes.add("CLASSIFIED_IN_PUBLIC_ROOM")
    if item.sender in external and room.is_public:
        codes.add("EXTERNAL_IN_PUBLIC_ROOM")
    if item.marked and item.event_type in ("m.room.name", "m.room.topic"):
        codes.add("CLASSIFIED_IN_ROOM_STATE")
    if room.encrypted and (
        item.event_type == "m.room.message"
        or item.has_text
        and item.event_type not in NEVER_ENCRYPTED
        and item.event_type not in ("m.room.encrypted", "m.reaction", "m.sticker")
    ):
        codes.add("PLAINTEXT_IN_ENCRYPTED_ROOM")
    return codes


@dataclass
class World:
    synapse: Any
    rooms: dict[str, RoomSpec]
    items: list[Planted]
    users: dict[str, Any]  # name -> harness Client
    external: set[str]
    #: The instant (ms) between the early and the late content; `since_rfc3339` is it as the audit takes it.
    since_ms: int = 0
    since_rfc3339: str = ""

    def room(self, key: str) -> RoomSpec:
        return self.rooms[key]

    def room_of(self, room_id: str) -> RoomSpec:
        return next(r for r in self.rooms.values() if r.room_id == room_id)

    @property
    def exposed_rooms(self) -> list[RoomSpec]:
        return [r for r in self.rooms.values() if r.exposed]

    def reasons(self, item: Planted) -> set[str]:
        return policy_reasons(self.rooms[item.room], item, self.external)

    def expected(self, rooms: list[RoomSpec] | None = None, since_ms: int | None = None) -> list[Planted]:
        """What an audit of `rooms` (default: the exposed ones) must find: every planted event or file there that the
        policy refuses because of a marking (a finding: docs/audit.md), sent at or after `since_ms` when given."""
        return [i for i in self.refused(rooms, since_ms) if i.marked]

    def refused(self, rooms: list[RoomSpec] | None = None, since_ms: int | None = None) -> list[Planted]:
        """Every planted event or file of `rooms` the policy refuses, marked or not (a refusal without a marking is
        no finding: it is counted in the room's `other_denials`)."""
        selected = {r.key for r in (rooms if rooms is not None else self.exposed_rooms)}
        return [
            i for i in self.items
            if i.room in selected and self.reasons(i) and (since_ms is None or i.ts >= since_ms)
        ]

    def ground_truth(self) -> list[Planted]:
        """The markings planted in exposed rooms: what the plain audit must find, no more, no less."""
        exposed = {r.key for r in self.exposed_rooms}
        return [i for i in self.items if i.marked and i.room in exposed]

    @property
    def all_texts(self) -> list[str]:
        """Every planted text long enough to be looked for in the audit's output (short ones such as `Merci Dr` could
        stand in the report's own words)."""
        texts = {t for i in self.items for t in i.texts if len(t) >= 12}
        return sorted(texts)

    @property
    def secret_words(self) -> list[str]:
        """The made-up names of the marked texts: any of them in an output is a leak of a marked text."""
        return sorted(SECRET_WORDS)


# =========================================================================================================== content

#: Each marked text names a made-up project: a word no report has a reason to print.
SECRET_WORDS = {
    "Zibeline", "Ocelot", "Héron", "Lynx", "Martre", "Putois", "Belette", "Blaireau", "Hermine", "Loutre", "Vison",
    "Castor", "Fouine", "Genette", "Mangouste", "Furet",
}


def text_message(body: str) -> dict:
    return {"msgtype": "m.text", "body": body}


def html_message(body: str, html: str) -> dict:
    return {"msgtype": "m.text", "body": body, "format": "org.matrix.custom.html", "formatted_body": html}


def poll_stable(question: str, answers: list[str]) -> dict:
    """`m.poll.start` (MSC3381 as merged: extensible-event text blocks)."""
    return {
        "m.poll": {
            "kind": "m.disclosed",
            "max_selections": 1,
            "question": {"m.text": [{"body": question}]},
            "answers": [{"m.id": f"a{n}", "m.text": [{"body": a}]} for n, a in enumerate(answers)],
        },
        "m.text": [{"body": "\n".join([question, *answers])}],
    }


def poll_unstable(question: str, answers: list[str]) -> dict:
    """`org.matrix.msc3381.poll.start`, as Element sends it."""
    return {
        "org.matrix.msc3381.poll.start": {
            "kind": "org.matrix.msc3381.poll.disclosed",
            "max_selections": 1,
            "question": {"org.matrix.msc1767.text": question},
            "answers": [{"id": f"a{n}", "org.matrix.msc1767.text": a} for n, a in enumerate(answers)],
        },
        "org.matrix.msc1767.text": "\n".join([question, *answers]),
    }


def ciphertext(n: int) -> dict:
    """An `m.room.encrypted` event's content, as a megolm session writes it (opaque to the server)."""
    blob = ("AwgAEpAB" + "k7Qz" * 40 + f"{n:04d}")[:180]
    return {
        "algorithm": MEGOLM,
        "ciphertext": blob,
        "device_id": "AUDITDEVICE",
        "sender_key": "x5lLgE6Zq7b0zKc3Ho2dU1nB9fJrT4wYvS8aPmQeXiM",
        "session_id": "Ns1vRk2pQ8mZt3yJ7cLx0aWf5hG9dE4bU6oIiKlYsAA",
    }


def ordinary_corpus(limit: int | None = None) -> list[dict]:
    """Messages of policies/tests/corpus-ordinary.yaml that look like markings and are not (doctors and regional
    directorates called DR, passwords that are secret, documents whose diffusion is restricted, ...), as sent."""
    cases = yaml.safe_load((REPO / "policies" / "tests" / "corpus-ordinary.yaml").read_text())["cases"]
    tricky = re.compile(r"(?i)\b(dr|secret|secrets|diffusion|restrein\w*|spécial|otan|nato|ue|eu|confidentiel\w*)\b")
    out = []
    for case in cases:
        message = dict(case["send"]["message"])
        if not tricky.search(json.dumps(message, ensure_ascii=False)):
            continue
        if "formatted_body" in message:
            message["format"] = "org.matrix.custom.html"
        out.append(message)
    return out[:limit]


def plain_text_file(marked: bool, word: str) -> bytes:
    lines = [f"Compte rendu de la réunion {word}", "", documents.BODY, documents.BODY]
    if marked:
        lines.insert(0, "DIFFUSION RESTREINTE")
    return ("\n".join(lines) + "\n").encode()


FIXTURES = REPO / "policies" / "tests" / "files"


# =========================================================================================================== Matrix


def q(identifier: str) -> str:
    return urllib.parse.quote(identifier, safe="")


def admin_get(synapse, token: str, path: str) -> Any:
    status, body = harness.request("GET", f"{synapse.base_url}{path}", None, token)
    assert status == 200, (path, status, body)
    return body


def client_event(synapse, token: str, room_id: str, event_id: str) -> tuple[int, dict]:
    """`GET /_matrix/client/v3/rooms/{roomId}/event/{eventId}` as a member."""
    return harness.request("GET", f"{synapse.base_url}/_matrix/client/v3/rooms/{q(room_id)}/event/{q(event_id)}", None,
                           token)


def room_events(synapse, admin_token: str, room_id: str) -> list[dict]:
    """Every event of a room, newest first (`/_synapse/admin/v1/rooms/{roomId}/messages`, paged backwards)."""
    events, since = [], None
    while True:
        path = f"/_synapse/admin/v1/rooms/{q(room_id)}/messages?dir=b&limit=1000"
        if since:
            path += f"&from={q(since)}"
        page = admin_get(synapse, admin_token, path)
        events += page["chunk"]
        if not page["chunk"] or not page.get("end"):
            return events
        since = page["end"]


def redaction_targets(events: list[dict]) -> list[str]:
    """The event ids that the room's `m.room.redaction` events redact (one entry per redaction event)."""
    out = []
    for event in events:
        if event["type"] == "m.room.redaction":
            out.append(event.get("redacts") or event.get("content", {}).get("redacts"))
    return out


def media_created_ts(synapse, admin_token: str, mxc: str) -> int:
    server, media_id = mxc.removeprefix("mxc://").split("/", 1)
    info = admin_get(synapse, admin_token, f"/_synapse/admin/v1/media/{server}/{media_id}")["media_info"]
    return int(info["created_ts"])


def send_event(client, room_id: str, event_type: str, content: dict, state_key: str | None = None) -> str:
    if state_key is None:
        resp = client.send(room_id, content, event_type)
    else:
        resp = client.set_state(room_id, event_type, content, state_key)
    assert resp.status == 200, (event_type, resp.status, resp.body)
    return resp.body["event_id"]


def upload(client, data: bytes, filename: str, mimetype: str) -> str:
    resp = client.upload(data, filename, mimetype)
    assert resp.status == 200, (filename, resp.status, resp.body)
    return resp.body["content_uri"]


def create_room(creator, spec: RoomSpec, name: str) -> str:
    initial_state = []
    if spec.encrypted:
        initial_state.append({"type": "m.room.encryption", "state_key": "", "content": {"algorithm": MEGOLM}})
    if spec.history_visibility != "shared":
        initial_state.append(
            {"type": "m.room.history_visibility", "state_key": "",
             "content": {"history_visibility": spec.history_visibility}}
        )
    return creator.create_room_id(
        preset="public_chat" if spec.join_rule == "public" else "private_chat",
        visibility="public" if spec.published else "private",
        name=name,
        initial_state=initial_state,
    )


def join(inviter, member, room: RoomSpec) -> None:
    if room.join_rule != "public":
        resp = inviter.invite(room.room_id, member.user_id)
        assert resp.status == 200, resp.body
    resp = member.join(room.room_id)
    assert resp.status == 200, resp.body
    room.members.append(member.user_id)


# =========================================================================================================== seeding


class Seeder:
    """Plants items: each `event(...)`/`file(...)` call sends at once and records the item."""

    def __init__(self, world: World):
        self.world = world
        self._lock = threading.Lock()

    def _record(self, item: Planted) -> Planted:
        with self._lock:
            self.world.items.append(item)
        return item

    def event(self, key: str, room: str, sender, event_type: str, content: dict, *, classification: str = "none",
              texts: list[str] | None = None, state_key: str | None = None, late: bool = False) -> Planted:
        room_id = self.world.rooms[room].room_id
        event_id = send_event(sender, room_id, event_type, content, state_key)
        return self._record(Planted(
            key=key, room=room, kind="event", sender=sender.user_id, classification=classification,
            texts=texts if texts is not None else [], event_type=event_type, content=content, state_key=state_key,
            event_id=event_id, late=late,
        ))

    def text(self, key: str, room: str, sender, body: str, classification: str = "none", late: bool = False):
        return self.event(key, room, sender, "m.room.message", text_message(body), classification=classification,
                          texts=[body], late=late)

    def file(self, key: str, room: str, sender, data: bytes, filename: str, mimetype: str, *, marked: bool,
             classification: str = "restricted", late: bool = False,
             msgtype: str = "m.file") -> tuple[Planted, Planted]:
        """Uploads a file and posts it (an `m.file`/`m.image` naming it): two items, the file and its event (whose
        only text is an ordinary file name)."""
        room_id = self.world.rooms[room].room_id
        mxc = upload(sender, data, filename, mimetype)
        content = {"msgtype": msgtype, "body": filename, "filename": filename, "url": mxc,
                   "info": {"mimetype": mimetype, "size": len(data)}}
        event_id = send_event(sender, room_id, "m.room.message", content)
        media = self._record(Planted(
            key=key, room=room, kind="media", sender=sender.user_id,
            classification=classification if marked else "none", texts=[], mxc=mxc, data=data, late=late,
            event_id=event_id, event_type="m.room.message",
        ))
        post = self._record(Planted(
            key=f"{key}/post", room=room, kind="event", sender=sender.user_id, classification="none",
            texts=[filename], event_type="m.room.message", content=content, event_id=event_id, late=late,
        ))
        return media, post


def seed_world(synapse, admin_token: str, external_localpart: str) -> World:
    """Registers the members, creates the six rooms and plants their content; returns the world with the ground
    truth. `external_localpart` is the account the caller's users.csv makes external (it joins the public room and
    says nothing); `admin_token` reads the files' upload times."""
    reg = synapse.register
    alice, bob = reg("alice"), reg("bob")
    ext = reg(external_localpart)
    users = {"alice": alice, "bob": bob, "ext": ext}
    world = World(
        synapse=synapse, rooms={s.key: RoomSpec(**{**s.__dict__, "members": []}) for s in ROOM_SPECS},
        items=[], users=users, external={ext.user_id},
    )
    names = {
        "public_published": "Salon des projets",
        "public_encrypted": "Salon ouvert chiffré",
        "private_unencrypted": "Équipe budget",
        "world_readable_encrypted": "Annonces",
        "published_encrypted": "Cellule communication",
        "private_encrypted": "Cabinet",
    }
    for key, spec in world.rooms.items():
        spec.room_id = create_room(alice, spec, names[key])
        spec.members.append(alice.user_id)
        join(alice, bob, spec)
    join(alice, ext, world.rooms["public_published"])

    s = Seeder(world)
    pub, penc, priv = "public_published", "public_encrypted", "private_unencrypted"
    wr, publ, secret_room = "world_readable_encrypted", "published_encrypted", "private_encrypted"

    def early_public():
        s.text("ordinary/pub/1", pub, alice, "Bonjour à tous, la réunion d'équipe est déplacée à 15 h.")
        s.text("marked/pub/body", pub, bob,
               "Note de synthèse DIFFUSION RESTREINTE sur le projet Zibeline, à ne pas transférer.", "restricted")
        html = "<p>Voir la note du projet Ocelot</p><p><em>Diffusion Restreinte</em></p>"
        s.event("marked/pub/html-only", pub, alice, "m.room.message",
                html_message("Voir la note du projet Ocelot ci-dessous", html), classification="restricted",
                texts=["Voir la note du projet Ocelot ci-dessous", html])
        question = "Sondage CONFIDENTIEL DÉFENSE : date de l'exercice Héron ?"
        s.event("marked/pub/poll-stable", pub, bob, "m.poll.start", poll_stable(question, ["Lundi", "Mardi"]),
                classification="secret", texts=[question])
        answer = "Jeudi, salle TRÈS SECRET DÉFENSE du projet Lynx"
        s.event("marked/pub/poll-unstable", pub, alice, "org.matrix.msc3381.poll.start",
                poll_unstable("Quel créneau pour le point d'étape ?", ["Mardi matin", answer]),
                classification="top_secret", texts=[answer])
        s.event("ordinary/pub/poll", pub, bob, "m.poll.start",
                poll_stable("Quel jour pour le pot de départ de Claire ?", ["Jeudi", "Vendredi"]),
                texts=["Quel jour pour le pot de départ de Claire ?"])
        original = s.text("ordinary/pub/edited", pub, alice, "Le compte rendu du projet Martre est en ligne.")
        edit_body = "Le compte rendu Diffusion Restreinte du projet Martre est en ligne."
        s.event("marked/pub/edit", pub, alice, "m.room.message", {
            "msgtype": "m.text", "body": "* Le compte rendu du projet est en ligne (corrigé)",
            "m.new_content": text_message(edit_body),
            "m.relates_to": {"rel_type": "m.replace", "event_id": original.event_id},
        }, classification="restricted", texts=[edit_body, "* Le compte rendu du projet est en ligne (corrigé)"])
        s.file("marked/pub/pdf", pub, bob, documents.pdf(True), "rapport-activite.pdf", "application/pdf",
               marked=True)
        s.file("ordinary/pub/pdf", pub, alice, documents.pdf(False), "rapport-public.pdf", "application/pdf",
               marked=False)
        s.file("marked/pub/docx", pub, alice, documents.docx(True), "note-ministre.docx",
               "application/vnd.openxmlformats-officedocument.wordprocessingml.document", marked=True)
        s.file("ordinary/pub/docx", pub, bob, documents.docx(False), "note-service.docx",
               "application/vnd.openxmlformats-officedocument.wordprocessingml.document", marked=False)
        s.file("marked/pub/txt", pub, bob, plain_text_file(True, "Fouine"), "compte-rendu.txt", "text/plain",
               marked=True)
        s.file("ordinary/pub/txt", pub, alice, plain_text_file(False, "de rentrée"), "ordre-du-jour.txt",
               "text/plain", marked=False)
        s.file("marked/pub/scan", pub, alice, (FIXTURES / "scan-dr.jpg").read_bytes(), "scan-0412.jpg",
               "image/jpeg", marked=True, msgtype="m.image")
        s.file("ordinary/pub/png", pub, bob, (FIXTURES / "clean-scan.png").read_bytes(), "scan-0413.png",
               "image/png", marked=False, msgtype="m.image")

    def early_others():
        # Public and encrypted: ciphertext, and a marked topic (state is never encrypted).
        for n in range(3):
            s.event(f"ordinary/penc/encrypted-{n}", penc, alice if n % 2 else bob, "m.room.encrypted", ciphertext(n))
        topic = "Salon du projet Putois - NATO RESTRICTED"
        s.event("marked/penc/topic", penc, alice, "m.room.topic", {"topic": topic}, state_key="",
                classification="restricted", texts=[topic])
        # Private and unencrypted: ordinary and marked text, a marked ODT.
        s.text("ordinary/priv/1", priv, bob, "Pouvez-vous valider le planning des congés d'été avant le 15 mai ?")
        s.text("marked/priv/abbreviation", priv, alice, "[DR] Ordre du jour du comité Blaireau", "restricted")
        s.file("marked/priv/odt", priv, bob, documents.odt(True), "courrier-prefet.odt",
               "application/vnd.oasis.opendocument.text", marked=True)
        s.file("ordinary/priv/xlsx", priv, alice, documents.xlsx(False), "budget.xlsx",
               "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", marked=False)
        # World-readable, invite-only, encrypted: ciphertext and a marked room name.
        s.event("ordinary/wr/encrypted", wr, bob, "m.room.encrypted", ciphertext(10))
        name = "Projet Hermine (Diffusion Restreinte)"
        s.event("marked/wr/name", wr, alice, "m.room.name", {"name": name}, state_key="",
                classification="restricted", texts=[name])
        # Published though invite-only, encrypted: ciphertext, and one plaintext marked message.
        s.event("ordinary/publ/encrypted", publ, alice, "m.room.encrypted", ciphertext(20))
        s.text("marked/publ/plaintext", publ, bob, "Spécial France : dossier Belette pour le conseil",
               "special_france")
        # Private and encrypted (not exposed): ciphertext, and the same markings in plaintext.
        for n in range(3):
            s.event(f"ordinary/secret/encrypted-{n}", secret_room, alice if n % 2 else bob, "m.room.encrypted",
                    ciphertext(30 + n))
        s.text("marked/secret/body", secret_room, alice, "DIFFUSION RESTREINTE : annexe du dossier Castor",
               "restricted")
        # Not documents.docx(True) again: Synapse quarantines every file with the same bytes (same SHA-256) at once,
        # so a copy of the public room's marked DOCX here would be quarantined with it, though not selected.
        s.file("marked/secret/docx", secret_room, bob, (FIXTURES / "header-dr.docx").read_bytes(),
               "annexe-cabinet.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
               marked=True)

    def corpus_chunk(messages: list[dict], offset: int, room: str):
        for n, message in enumerate(messages):
            texts = [message[k] for k in ("body", "formatted_body", "filename") if message.get(k)]
            s.event(f"ordinary/corpus/{room}/{offset + n}", room, alice if n % 2 else bob, "m.room.message",
                    message, texts=texts)

    corpus = ordinary_corpus()
    half = len(corpus) // 2
    jobs = [early_public, early_others]
    for start in range(0, half, 40):
        jobs.append(lambda start=start: corpus_chunk(corpus[start:min(start + 40, half)], start, pub))
    for start in range(half, len(corpus), 40):
        jobs.append(lambda start=start: corpus_chunk(corpus[start:start + 40], start, priv))
    with ThreadPoolExecutor(8) as pool:
        for future in [pool.submit(job) for job in jobs]:
            future.result()

    # The `since` instant: a whole second, with more than a second of silence on each side of it.
    time.sleep(1.1)
    since_s = int(time.time()) + 1
    while time.time() < since_s + 1.1:
        time.sleep(0.05)
    world.since_ms = since_s * 1000
    world.since_rfc3339 = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since_s))

    s.text("ordinary/pub/late", pub, bob, "Merci pour vos retours, je consolide et je renvoie la version 2 ce soir.",
           late=True)
    s.text("marked/pub/late", pub, alice, "DIFFUSION RESTREINTE - relevé de décisions Loutre", "restricted",
           late=True)
    s.file("marked/pub/late-txt", pub, bob, plain_text_file(True, "Genette"), "releve.txt", "text/plain", marked=True,
           late=True)
    s.text("marked/priv/late", priv, bob, "Secret Défense : carnet Vison", "secret", late=True)

    files = [i.data for i in world.items if i.kind == "media"]
    assert len(set(files)) == len(files), "every planted file differs (Synapse quarantines equal bytes together)"
    fill_timestamps(world, admin_token)
    return world


def fill_timestamps(world: World, admin_token: str) -> None:
    """Each item's date as the homeserver has it: the event's `origin_server_ts` (read as a member: alice is in every
    room); for a file, the time of the event that posted it (when it was exposed in the room), else its upload time
    (admin API)."""
    member_token = world.users["alice"].token

    def stamp(item: Planted):
        if item.kind == "media" and not item.event_id:
            item.ts = media_created_ts(world.synapse, admin_token, item.mxc)
            return
        room_id = world.rooms[item.room].room_id
        status, event = client_event(world.synapse, member_token, room_id, item.event_id)
        assert status == 200, (item.key, event)
        item.ts = int(event["origin_server_ts"])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(stamp, world.items))


# =========================================================================================================== bulk


def seed_bulk(synapse, *, rooms: int, events_per_room: int, files: int, marked_every: int = 97,
              marked_file_every: int = 23, threads: int = 16, log=print) -> dict:
    """The benchmark's homeserver: `rooms` public unencrypted rooms of `events_per_room` ordinary messages each
    (one in `marked_every` marked), and `files` files (text, PDF, DOCX in turn; one in `marked_file_every` marked)
    spread over the rooms. Several senders and rooms at once. Returns counts and the room ids."""
    alice, bob = synapse.register("bulkalice"), synapse.register("bulkbob")
    room_ids = []
    with ThreadPoolExecutor(threads) as pool:
        specs = [RoomSpec(f"bulk{n}", "public", False, "shared", False) for n in range(rooms)]
        room_ids = list(pool.map(lambda spec: create_room(alice, spec, f"Salon {spec.key}"), specs))
        for resp in pool.map(bob.join, room_ids):
            assert resp.status == 200, resp.body
    corpus = [m["body"] for m in ordinary_corpus()] + [
        "Bonjour à tous, la réunion d'équipe est déplacée à 15 h en salle Jean Moulin.",
        "Rappel : point hebdo demain 9 h 30, ordre du jour en pièce jointe.",
        "Compte rendu de la réunion de ce matin : budget, calendrier, recrutement.",
    ]
    docs = {
        "txt": (lambda m, n: plain_text_file(m, f"numéro {n}"), "text/plain"),
        "pdf": (lambda m, n: documents.pdf(m, pages=2), "application/pdf"),
        "docx": (lambda m, n: documents.docx(m),
                 "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    }
    counts = {"events": 0, "marked_events": 0, "files": 0, "marked_files": 0, "bytes": 0}
    lock = threading.Lock()

    def fill(job):
        room_n, start, stop = job
        room_id = room_ids[room_n]
        for n in range(start, stop):
            sender = alice if n % 2 else bob
            marked = n % marked_every == marked_every - 1
            body = (f"DIFFUSION RESTREINTE - note {room_n}.{n}" if marked
                    else f"{corpus[(room_n * 31 + n) % len(corpus)]} ({room_n}.{n})")
            send_event(sender, room_id, "m.room.message", text_message(body))
            with lock:
                counts["events"] += 1
                counts["marked_events"] += marked

    def put_file(n):
        kind = ("txt", "pdf", "docx")[n % 3]
        make, mimetype = docs[kind]
        marked = n % marked_file_every == marked_file_every - 1
        data = make(marked, n)
        sender = alice if n % 2 else bob
        mxc = upload(sender, data, f"piece-{n}.{kind}", mimetype)
        send_event(sender, room_ids[n % rooms], "m.room.message",
                   {"msgtype": "m.file", "body": f"piece-{n}.{kind}", "url": mxc,
                    "info": {"mimetype": mimetype, "size": len(data)}})
        with lock:
            counts["files"] += 1
            counts["marked_files"] += marked
            counts["bytes"] += len(data)

    chunk = 100
    jobs = [(r, s, min(s + chunk, events_per_room)) for s in range(0, events_per_room, chunk) for r in range(rooms)]
    started = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(fill, job) for job in jobs] + [pool.submit(put_file, n) for n in range(files)]
        last_report = started
        for future in futures:
            future.result()
            if time.monotonic() - last_report >= 30:
                last_report = time.monotonic()
                log(f"  seeded {counts['events']} events, {counts['files']} files "
                    f"({last_report - started:.0f} s)")
    counts["rooms"] = rooms
    counts["room_ids"] = room_ids
    counts["seconds"] = round(time.monotonic() - started, 1)
    return counts

