"""The legacy media API (`/_matrix/media/{v3,r0,v1}/download|thumbnail`), which Synapse serves to anyone who knows a
file's id: refused through nginx to a request without an account (read.unauthenticated-media)."""

from __future__ import annotations

import matrix
from matrix import metric


def assert_unauthenticated_refusal(resp, what: str) -> None:
    assert resp.status == 403, (what, resp.status, resp.body[:300])
    assert resp.headers.get("content-type", "").startswith("application/json"), (what, resp.headers)
    body = resp.json()
    assert body["errcode"] == "M_FORBIDDEN", (what, body)
    assert "(UNAUTHENTICATED_MEDIA)" in body["error"], (what, body)
    assert "retry_after_ms" not in body and "retry-after" not in resp.headers, (what, resp.headers)
    assert resp.headers.get("access-control-allow-origin") == "*", (what, resp.headers)
    assert len(resp.headers.get("x-roomguard-decision-id", "")) == 36, (what, resp.headers)


def test_a_legacy_download_without_a_token_is_refused(nginx, roomguard, world):
    """GET /_matrix/media/v3/download/{server}/{mediaId} with no access token, through nginx: 403 with
    UNAUTHENTICATED_MEDIA in the Matrix error body, never the file. The same for the r0 and v1 prefixes and for a
    legacy thumbnail."""
    file = world.files[0]
    before = metric(roomguard, "roomguard_reads_total", kind="media", effect="deny")
    for version in ("v3", "r0", "v1"):
        resp = matrix.legacy_download(nginx, None, file, version)
        assert_unauthenticated_refusal(resp, f"{version} download")
        assert file.content not in resp.body
    resp = nginx.request("GET", f"/_matrix/media/v3/thumbnail/{file.server_and_id}?width=32&height=32")
    assert_unauthenticated_refusal(resp, "v3 thumbnail")
    assert metric(roomguard, "roomguard_reads_total", kind="media", effect="deny") == before + 3


def test_a_legacy_download_with_an_unknown_token_is_refused_too(nginx, world):
    """A made-up token does not make a legacy download authenticated: Synapse serves those paths without looking
    at the token, so roomguard decides it as a request without an account (403 UNAUTHENTICATED_MEDIA)."""
    resp = matrix.legacy_download(nginx, "syt_made_up_token_0000000000", world.files[1])
    assert_unauthenticated_refusal(resp, "download with an unknown token")


def test_a_legacy_download_with_an_account_is_left_to_synapse(nginx, roomguard, accounts, world):
    """With a real account's token the legacy path is not refused by roomguard (allowed, counted as a download):
    Synapse answers for itself (it serves files uploaded with authenticated media on only on the authenticated
    path). And the authenticated path without a token gets Synapse's own 401 M_MISSING_TOKEN."""
    member = accounts.new("member")
    allowed = metric(roomguard, "roomguard_reads_total", kind="media", effect="allow")
    resp = matrix.legacy_download(nginx, member.token, world.files[2])
    assert resp.status != 403 and b"UNAUTHENTICATED_MEDIA" not in resp.body, (resp.status, resp.body)
    assert "x-roomguard-decision-id" not in resp.headers
    assert metric(roomguard, "roomguard_reads_total", kind="media", effect="allow") == allowed + 1

    resp = matrix.download(nginx, None, world.files[2])
    assert resp.status == 401 and resp.json()["errcode"] == "M_MISSING_TOKEN", (resp.status, resp.body)
