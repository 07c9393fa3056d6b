"""deploy/envoy/envoy.yaml with a real Envoy, a gRPC ext_authz stub (stub_ext_authz.py) and the Synapse stub."""

from __future__ import annotations

import subprocess

import harness
import pytest
from paths import NOT_READS, READS, TRICKS, synapse_read_patterns, variants

ALLOW = {"Authorization": "Bearer allow"}
BODY = b'{"search_categories":{"room_events":{"search_term":"secret"}}}'
CORS = {
    "access-control-allow-origin": "*",
    "access-control-allow-methods": "GET, HEAD, POST, PUT, DELETE, OPTIONS",
    "access-control-allow-headers": "X-Requested-With, Content-Type, Authorization, Date",
}


def body_for(method: str) -> bytes | None:
    return BODY if method in ("POST", "PUT") else None


def checked_paths(ext_authz) -> list[str]:
    return [http.path for http in ext_authz.snapshot()]


def assert_matrix_error(response, status: int, errcode: str):
    assert response.status == status, response.body
    assert response.headers["content-type"] == "application/json"
    for name, value in CORS.items():
        assert response.headers[name] == value
    assert "no-store" in response.headers["cache-control"]
    body = response.json()
    assert body["errcode"] == errcode
    return body


def test_shipped_config_validates(envoy_bin):
    result = subprocess.run(
        [envoy_bin, "--mode", "validate", "-c", str(harness.ENVOY_DIR / "envoy.yaml"), "--log-level", "warning"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout


@pytest.mark.parametrize(("method", "target", "kind"), READS, ids=[f"{m} {t}" for m, t, _ in READS])
def test_each_read_is_checked_then_proxied_raw(envoy, ext_authz, synapse, method, target, kind):
    response = envoy.request(method, target, headers=ALLOW, body=body_for(method))
    assert response.status == 200, response.body
    [http] = ext_authz.snapshot()
    assert http.method == method
    assert http.path == target  # raw: percent-encoding and query intact
    assert http.headers["authorization"] == "Bearer allow"
    assert http.body == "" and http.raw_body == b""  # the body stays with Synapse
    [upstream] = synapse.recorder.snapshot()
    assert (upstream.method, upstream.target, upstream.body) == (method, target, body_for(method) or b"")


@pytest.mark.parametrize(("method", "target"), NOT_READS, ids=[f"{m} {t}" for m, t in NOT_READS])
def test_other_requests_go_straight_to_synapse(envoy, ext_authz, synapse, method, target):
    response = envoy.request(method, target, headers=ALLOW, body=body_for(method))
    assert response.status == 200, response.body
    assert ext_authz.snapshot() == []
    [upstream] = synapse.recorder.snapshot()
    assert (upstream.method, upstream.target, upstream.body) == (method, target, body_for(method) or b"")


@pytest.mark.parametrize("target", TRICKS)
def test_tricks_are_checked_or_not_proxied(envoy, ext_authz, synapse, target):
    """Envoy does not normalise: a trick under Synapse's paths is checked and proxied as it came; one that is not
    under them (`//_matrix/...`, `/x/../_matrix/...`) is answered 404 by Envoy and reaches neither."""
    response = envoy.request("GET", target, headers=ALLOW)
    if response.status == 404:
        assert ext_authz.snapshot() == [] and synapse.recorder.snapshot() == []
        assert not target.startswith(("/_matrix/", "/_synapse/client/")), target
    else:
        assert response.status == 200, response.body
        assert checked_paths(ext_authz) == [target]
        assert [s.target for s in synapse.recorder.snapshot()] == [target]


def test_no_raw_path_that_synapse_reads_escapes_the_check(envoy, ext_authz, synapse):
    patterns = pytest.importorskip("synapse") and synapse_read_patterns()
    checked_reads = unchecked_proxied = 0
    for target in variants():
        ext_authz.clear()
        synapse.recorder.clear()
        envoy.request("GET", target, headers=ALLOW)
        checked = checked_paths(ext_authz) == [target]
        if any(p.match(target.split("?", 1)[0]) for p in patterns):
            assert checked, f"{target} is a read for Synapse but was not checked"
            checked_reads += 1
        if not checked:
            for upstream in synapse.recorder.snapshot():
                unchecked_proxied += 1
                assert not any(p.match(upstream.target.split("?", 1)[0]) for p in patterns), upstream.target
    assert checked_reads > 100 and unchecked_proxied > 50


def test_absolute_form_request_target(envoy, ext_authz, synapse):
    response = envoy.request("GET", "http://matrix.example.com/_matrix/client/v3/sync?x=1", headers=ALLOW)
    assert response.status == 200
    assert checked_paths(ext_authz) == ["/_matrix/client/v3/sync?x=1"]
    assert [s.target for s in synapse.recorder.snapshot()] == ["/_matrix/client/v3/sync?x=1"]


def test_synapse_gets_its_proxy_headers(envoy, synapse):
    response = envoy.request("GET", "/_matrix/client/versions", headers={"X-Forwarded-For": "203.0.113.9"})
    assert response.status == 200
    headers = synapse.recorder.snapshot()[0].headers
    # One address, the client's (Envoy's own peer address here: the client is on loopback), not the spoofed one.
    assert "203.0.113.9" not in headers["x-forwarded-for"] and "," not in headers["x-forwarded-for"]
    assert headers["x-forwarded-proto"] == "http"
    assert headers["host"] == "matrix.example.com"


def test_deny_429_is_roomguard_answer_with_cors(envoy, synapse):
    response = envoy.request("GET", "/_matrix/client/v3/sync", headers={"Authorization": "Bearer rate"})
    body = assert_matrix_error(response, 429, "M_LIMIT_EXCEEDED")
    assert body["retry_after_ms"] == 1234567
    assert response.headers["retry-after"] == "1235"
    assert "Retry-After" in response.headers["access-control-expose-headers"]
    assert response.headers["x-roomguard-decision-id"]
    assert synapse.recorder.snapshot() == []


def test_deny_403_400_503_as_roomguard_sent_them(envoy):
    forbidden = envoy.request("POST", "/_matrix/client/v3/search", headers={"Authorization": "Bearer forbidden"}, body=BODY)
    assert b"\\u00e9" in forbidden.body
    assert assert_matrix_error(forbidden, 403, "M_FORBIDDEN")["error"] == "Lecture refusée : salon classifié (READ_FORBIDDEN)"
    media = envoy.request("GET", "/_matrix/client/v1/media/download/example.org/abcDEF/cat.png")
    assert assert_matrix_error(media, 403, "M_FORBIDDEN")["error"].endswith("(UNAUTHENTICATED_MEDIA)")
    malformed = envoy.request("GET", "/_matrix/client/v3/sync", headers={"Authorization": "Bearer malformed"})
    assert_matrix_error(malformed, 400, "M_UNRECOGNIZED")
    undecided = envoy.request("GET", "/_matrix/client/v3/sync", headers={"Authorization": "Bearer undecided"})
    body = assert_matrix_error(undecided, 503, "M_UNKNOWN")
    assert body["error"] == "roomguard cannot decide (READ_GUARD_UNAVAILABLE)"  # roomguard's body, not Envoy's


def test_synapse_own_errors_pass_untouched(envoy):
    for status in (401, 403, 429, 500, 503):
        response = envoy.request("GET", f"/_matrix/client/v3/sync?synapse_status={status}", headers=ALLOW)
        assert response.status == status
        assert response.json() == {"errcode": "M_SYNAPSE_OWN", "error": f"Synapse's own {status}"}
        assert "access-control-expose-headers" not in response.headers


def test_head(envoy, ext_authz, synapse):
    target = "/_matrix/client/v3/rooms/%21room%3Aexample.org/messages"
    allowed = envoy.request("HEAD", target, headers=ALLOW)
    assert allowed.status == 200 and allowed.body == b""
    denied = envoy.request("HEAD", target, headers={"Authorization": "Bearer rate"})
    assert denied.status == 429 and denied.body == b"" and denied.headers["retry-after"] == "1235"
    assert [http.method for http in ext_authz.snapshot()] == ["HEAD", "HEAD"]


def test_not_synapse_is_404_and_admin_is_not_exposed(envoy, ext_authz, synapse):
    for target in ("/_synapse/admin/v1/rooms/%21room%3Aexample.org/messages", "/", "/robots.txt"):
        response = envoy.request("GET", target, headers=ALLOW)
        assert response.status == 404 and response.json()["errcode"] == "M_UNRECOGNIZED"
    assert ext_authz.snapshot() == [] and synapse.recorder.snapshot() == []


def test_no_caller_token_by_default_and_the_commented_one_works(envoy, make_envoy, ext_authz):
    assert envoy.request("GET", "/_matrix/client/v3/sync", headers=ALLOW).status == 200
    assert "authorization" not in ext_authz.metadata[-1]
    with_token = make_envoy(ext_authz.address, False, caller_token="s3cret-caller-token")
    assert with_token.request("GET", "/_matrix/client/v3/sync", headers=ALLOW).status == 200
    assert ext_authz.metadata[-1]["authorization"] == "Bearer s3cret-caller-token"
    # The client's own Authorization still travels in the CheckRequest, apart from the caller's.
    assert ext_authz.snapshot()[-1].headers["authorization"] == "Bearer allow"


# ------------------------------------------------------------------------------------------------- roomguard down


@pytest.mark.parametrize("failure_mode_allow", [False, True])
def test_roomguard_down(make_envoy, refusing_port, synapse, failure_mode_allow):
    proxy = make_envoy(refusing_port.address, failure_mode_allow)
    synapse.recorder.clear()
    response = proxy.request("POST", "/_matrix/client/v3/search?x=1", headers=ALLOW, body=BODY)
    if failure_mode_allow:
        assert response.status == 200
        [upstream] = synapse.recorder.snapshot()
        assert (upstream.target, upstream.body) == ("/_matrix/client/v3/search?x=1", BODY)
    else:
        body = assert_matrix_error(response, 503, "M_UNKNOWN")
        assert body["error"] == "The read guard is unavailable"
        assert synapse.recorder.snapshot() == []
    # Not a read: not affected either way.
    assert proxy.request("PUT", "/_matrix/client/v3/rooms/%21r%3Ae/send/m.room.message/t", headers=ALLOW, body=BODY).status == 200
    assert proxy.stats("ext_authz").get("http.matrix.ext_authz.error", 0) >= 1


@pytest.mark.parametrize("failure_mode_allow, status", [(False, 503), (True, 200)])
def test_roomguard_broken_follows_the_failure_mode(make_envoy, ext_authz, failure_mode_allow, status):
    proxy = make_envoy(ext_authz.address, failure_mode_allow)
    response = proxy.request("GET", "/_matrix/client/v3/sync", headers={"Authorization": "Bearer broken"})
    assert response.status == status
    if status == 503:
        assert_matrix_error(response, 503, "M_UNKNOWN")


def test_roomguard_too_slow_follows_the_failure_mode(envoy):
    """grpc_service timeout 2s."""
    response = envoy.request("GET", "/_matrix/client/v3/sync", headers={"Authorization": "Bearer slow"}, timeout=10)
    assert assert_matrix_error(response, 503, "M_UNKNOWN")["error"] == "The read guard is unavailable"
