"""deploy/nginx with a real nginx, the authz stub (tests/proxies/stubs.py) and the Synapse stub."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import harness
import pytest
from paths import NOT_READS, READS, TRICKS, synapse_read_patterns, variants

ALLOW = {"Authorization": "Bearer allow"}
BODY = b'{"search_categories":{"room_events":{"search_term":"secret"}}}'


def body_for(method: str) -> bytes | None:
    return BODY if method in ("POST", "PUT") else None


def authz_uris(authz) -> list[str]:
    return [seen.headers.get("x-original-uri") for seen in authz.recorder.snapshot()]


# ------------------------------------------------------------------------------------------------- the shipped files


def test_shipped_site_file_passes_nginx_t_with_tls(nginx_bin, tmp_path):
    """synapse.conf as shipped (TLS and HTTP/2 listeners included), only the include paths and certificate changed."""
    if not shutil.which("openssl"):
        pytest.skip("openssl not found (needed for a throwaway certificate)")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=matrix.example.com",
         "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem")],
        check=True, capture_output=True, timeout=60,
    )
    for name in ("roomguard-reads.http.conf", "roomguard-reads.server.conf"):
        shutil.copy(harness.NGINX_DIR / name, tmp_path / name)
    site = (harness.NGINX_DIR / "synapse.conf").read_text()
    site = site.replace("/etc/nginx/roomguard/", f"{tmp_path}/")
    site = site.replace("/etc/letsencrypt/live/matrix.example.com/fullchain.pem", str(tmp_path / "cert.pem"))
    site = site.replace("/etc/letsencrypt/live/matrix.example.com/privkey.pem", str(tmp_path / "key.pem"))
    site = site.replace("/var/log/nginx/matrix.access.log", str(tmp_path / "access.log"))
    (tmp_path / "synapse.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log; events {{}}\n"
        f"http {{ include {tmp_path}/synapse.conf; }}\n"
    )
    result = subprocess.run(
        [nginx_bin, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


# ------------------------------------------------------------------------------------------------- which requests


@pytest.mark.parametrize(("method", "target", "kind"), READS, ids=[f"{m} {t}" for m, t, _ in READS])
def test_each_read_is_checked_then_proxied_raw(nginx, authz, synapse, method, target, kind):
    response = nginx.request(method, target, headers=ALLOW, body=body_for(method))
    assert response.status == 200, response.body

    [seen] = authz.recorder.snapshot()
    assert seen.method == "GET"  # proxy_method GET; the client's method is in X-Original-Method
    assert seen.target == "/authz"
    assert seen.headers["x-original-uri"] == target  # raw: percent-encoding and query intact
    assert seen.headers["x-original-method"] == method
    assert seen.headers["authorization"] == "Bearer allow"
    assert re.fullmatch(r"[0-9a-f]{32}", seen.headers["x-request-id"])
    assert seen.body == b"" and "content-length" not in seen.headers and "transfer-encoding" not in seen.headers

    [upstream] = synapse.recorder.snapshot()
    assert upstream.method == method
    assert upstream.target == target
    assert upstream.body == (body_for(method) or b"")
    # The kind the stub (as roomguard) derived from the raw URI nginx sent.
    assert f"rg_kind={kind} " in nginx.access_log_line(f"req={seen.headers['x-request-id']} ")


@pytest.mark.parametrize(("method", "target"), NOT_READS, ids=[f"{m} {t}" for m, t in NOT_READS])
def test_other_requests_go_straight_to_synapse(nginx, authz, synapse, method, target):
    response = nginx.request(method, target, headers=ALLOW, body=body_for(method))
    assert response.status == 200, response.body
    assert authz.recorder.snapshot() == []
    [upstream] = synapse.recorder.snapshot()
    assert (upstream.method, upstream.target, upstream.body) == (method, target, body_for(method) or b"")


@pytest.mark.parametrize("target", TRICKS)
def test_tricks_are_checked_with_the_raw_uri(nginx, authz, synapse, target):
    response = nginx.request("GET", target, headers=ALLOW)
    assert authz_uris(authz) == [target], (response.status, response.body)
    assert response.status == 200, response.body
    [upstream] = synapse.recorder.snapshot()
    assert upstream.target == target  # Synapse gets the raw target too: what was decided is what is served


def test_no_raw_path_that_synapse_reads_escapes_the_check(nginx, authz, synapse):
    """Hundreds of variants around the reads (prefixes, encodings, case, `//`, `.`, `..`, trailing slash) through the
    real nginx: every target that a Synapse read servlet's own regex matches (Synapse matches the raw path) was
    checked, and whatever nginx passed to Synapse unchecked is no read for Synapse."""
    patterns = pytest.importorskip("synapse") and synapse_read_patterns()
    checked_reads = unchecked = 0
    for target in variants():
        authz.recorder.clear()
        synapse.recorder.clear()
        nginx.request("GET", target, headers=ALLOW)
        is_read = any(p.match(target.split("?", 1)[0]) for p in patterns)
        checked = authz_uris(authz) == [target]
        if is_read:
            assert checked, f"{target} is a read for Synapse but was not checked"
            checked_reads += 1
        if not checked:
            unchecked += 1
            for upstream in synapse.recorder.snapshot():
                assert not any(p.match(upstream.target.split("?", 1)[0]) for p in patterns), upstream.target
    assert checked_reads > 100 and unchecked > 50  # the variants do exercise both sides


def test_sample_paths_are_what_synapse_says(nginx):
    """READS are reads for Synapse 1.163's own servlets, NOT_READS are not."""
    pytest.importorskip("synapse")
    patterns = synapse_read_patterns()
    for _method, target, _kind in READS:
        assert any(p.match(target.split("?", 1)[0]) for p in patterns), target
    for method, target in NOT_READS:
        if method == "OPTIONS":
            continue  # a read's path, but a preflight: Synapse answers it without running the servlet
        assert not any(p.match(target.split("?", 1)[0]) for p in patterns), target


# ------------------------------------------------------------------------------------------------- answers


def test_allow_passes_synapse_answer_through(nginx, synapse):
    target = f"/_matrix/client/v3/rooms/%21room%3Aexample.org/messages?dir=b"
    response = nginx.request("GET", target, headers=ALLOW)
    assert response.status == 200
    assert response.headers["x-stub"] == "synapse"
    assert response.json()["raw_target"] == target
    # Synapse gets its usual proxy headers, and nothing from roomguard.
    upstream = synapse.recorder.snapshot()[0].headers
    assert upstream["x-forwarded-for"] == "127.0.0.1"
    assert upstream["x-forwarded-proto"] == "http"
    assert upstream["host"] == f"matrix.example.com:{nginx.port}"
    assert not any(name.startswith("x-roomguard") for name in upstream)


CORS = {
    "access-control-allow-origin": "*",
    "access-control-allow-methods": "GET, HEAD, POST, PUT, DELETE, OPTIONS",
    "access-control-allow-headers": "X-Requested-With, Content-Type, Authorization, Date",
}


def assert_matrix_error(response, status: int, errcode: str):
    assert response.status == status, response.body
    assert response.headers["content-type"] == "application/json"
    for name, value in CORS.items():
        assert response.headers[name] == value
    if response.headers.get("x-roomguard-decision-id"):  # roomguard's deny (not the failure mode's 503)
        assert "Retry-After" in response.headers["access-control-expose-headers"]
    assert "no-store" in response.headers["cache-control"]
    body = response.json()
    assert body["errcode"] == errcode
    return body


def test_deny_429_is_a_matrix_rate_limit_with_retry_after(nginx, synapse):
    response = nginx.request("GET", "/_matrix/client/v3/sync", headers={"Authorization": "Bearer rate"})
    body = assert_matrix_error(response, 429, "M_LIMIT_EXCEEDED")
    assert body == {"errcode": "M_LIMIT_EXCEEDED", "error": "Too many reads (READ_RATE_EXCEEDED)", "retry_after_ms": 1234567}
    assert response.headers["retry-after"] == "1235"
    assert re.fullmatch(r"[0-9a-f-]{36}", response.headers["x-roomguard-decision-id"])
    assert synapse.recorder.snapshot() == []
    # The access log carries the decision.
    line = nginx.access_log_line(f"rg={response.headers['x-roomguard-decision-id']} ")
    assert f"rg={response.headers['x-roomguard-decision-id']} rg_kind=sync_initial rg_reasons=READ_RATE_EXCEEDED" in line


def test_deny_on_a_media_path_is_json_whatever_the_file_name(nginx):
    """nginx would pick Content-Type from the URI's extension (.png): the deny locations clear `types`."""
    response = nginx.request(
        "GET", "/_matrix/client/v1/media/download/example.org/abcDEF/cat.png", headers={"Authorization": "Bearer rate"}
    )
    body = assert_matrix_error(response, 429, "M_LIMIT_EXCEEDED")
    assert "DOWNLOAD_RATE_EXCEEDED" in body["error"]


def test_deny_403_unauthenticated_media(nginx, synapse):
    response = nginx.request("GET", "/_matrix/media/v3/thumbnail/example.org/abcDEF.jpg?width=32&height=32")
    body = assert_matrix_error(response, 403, "M_FORBIDDEN")
    assert body["error"].endswith("(UNAUTHENTICATED_MEDIA)")
    assert "retry-after" not in response.headers
    assert synapse.recorder.snapshot() == []


def test_deny_403_body_with_escaped_non_ascii(nginx):
    response = nginx.request(
        "POST", "/_matrix/client/v3/search", headers={"Authorization": "Bearer forbidden"}, body=BODY
    )
    assert b"\\u00e9" in response.body  # as roomguard sent it: ASCII
    body = assert_matrix_error(response, 403, "M_FORBIDDEN")
    assert body["error"] == "Lecture refusée : salon classifié (READ_FORBIDDEN)"


def test_deny_400(nginx):
    response = nginx.request("GET", "/_matrix/client/v3/sync", headers={"Authorization": "Bearer malformed"})
    assert_matrix_error(response, 400, "M_UNRECOGNIZED")


def test_nginx_itself_refuses_a_broken_percent_encoding(nginx, authz, synapse):
    """nginx answers 400 before any location: neither roomguard nor Synapse sees the request."""
    response = nginx.request("GET", "/_matrix/client/v3/rooms/%zz/messages", headers=ALLOW)
    assert response.status == 400
    assert authz.recorder.snapshot() == [] and synapse.recorder.snapshot() == []


def test_deny_503_when_roomguard_fails_closed_itself(nginx):
    response = nginx.request("GET", "/_matrix/client/v3/sync", headers={"Authorization": "Bearer undecided"})
    assert_matrix_error(response, 503, "M_UNKNOWN")


def test_deny_without_roomguard_headers_gets_a_generic_403(nginx):
    response = nginx.request("GET", "/_matrix/client/v3/sync", headers={"Authorization": "Bearer bare"})
    body = assert_matrix_error(response, 403, "M_FORBIDDEN")
    assert body["error"] == "Denied by the read guard"


def test_synapse_own_errors_pass_untouched(nginx):
    for status in (401, 403, 429, 500):
        response = nginx.request("GET", f"/_matrix/client/v3/sync?synapse_status={status}", headers=ALLOW)
        assert response.status == status
        assert response.json() == {"errcode": "M_SYNAPSE_OWN", "error": f"Synapse's own {status}"}
        assert response.headers["x-stub"] == "synapse"


def test_head(nginx, authz, synapse):
    target = f"/_matrix/client/v3/rooms/%21room%3Aexample.org/messages"
    allowed = nginx.request("HEAD", target, headers=ALLOW)
    assert allowed.status == 200 and allowed.body == b""
    assert synapse.recorder.snapshot()[0].method == "HEAD"
    denied = nginx.request("HEAD", target, headers={"Authorization": "Bearer rate"})
    assert denied.status == 429 and denied.body == b""
    assert denied.headers["retry-after"] == "1235"
    assert denied.headers["access-control-allow-origin"] == "*"
    assert [s.headers["x-original-method"] for s in authz.recorder.snapshot()] == ["HEAD", "HEAD"]


def test_request_body_goes_to_synapse_not_to_roomguard(nginx, authz, synapse):
    for chunked in (False, True):
        authz.recorder.clear()
        synapse.recorder.clear()
        response = nginx.request("POST", "/_matrix/client/v3/search", headers=ALLOW, body=BODY, chunked=chunked)
        assert response.status == 200
        [seen] = authz.recorder.snapshot()
        assert seen.body == b""
        assert "content-length" not in seen.headers and "transfer-encoding" not in seen.headers
        assert synapse.recorder.snapshot()[0].body == BODY


def test_only_the_contract_headers_reach_roomguard(nginx, authz):
    nginx.request("GET", "/_matrix/client/v3/sync", headers={**ALLOW, "Cookie": "session=1", "X-Request-Id": "mine"})
    [seen] = authz.recorder.snapshot()
    assert set(seen.headers) == {"host", "x-original-uri", "x-original-method", "authorization", "x-request-id"}
    assert seen.headers["x-request-id"] != "mine"  # nginx's own $request_id, the one in its access log


def test_a_request_without_token_reaches_roomguard_without_authorization(nginx, authz, synapse):
    response = nginx.request("GET", "/_matrix/client/v3/sync")
    assert response.status == 200  # the stub, like roomguard, lets Synapse answer 401 itself
    [seen] = authz.recorder.snapshot()
    assert "authorization" not in seen.headers


def test_connections_to_roomguard_are_kept_alive(nginx, authz):
    for _ in range(10):
        assert nginx.request("GET", "/_matrix/client/v3/sync", headers=ALLOW).status == 200
    peers = {seen.peer for seen in authz.recorder.snapshot()}
    assert len(authz.recorder.snapshot()) == 10
    assert len(peers) == 1, peers  # one worker, one keepalive connection reused


# ------------------------------------------------------------------------------------------------- roomguard down


READ = "/_matrix/client/v3/search?x=1"


def test_roomguard_down_fail_closed(make_nginx, refusing_port, synapse):
    proxy = make_nginx(refusing_port.address, "closed")
    synapse.recorder.clear()
    response = proxy.request("POST", READ, headers=ALLOW, body=BODY)
    body = assert_matrix_error(response, 503, "M_UNKNOWN")
    assert body["error"] == "The read guard is unavailable"
    assert synapse.recorder.snapshot() == []
    assert "Connection refused" in proxy.error_log()
    # Not a read: not affected.
    assert proxy.request("GET", "/_matrix/client/versions").status == 200


def test_roomguard_down_fail_open(make_nginx, refusing_port, synapse):
    proxy = make_nginx(refusing_port.address, "open")
    synapse.recorder.clear()
    response = proxy.request("POST", READ, headers=ALLOW, body=BODY)
    assert response.status == 200
    [upstream] = synapse.recorder.snapshot()
    assert (upstream.method, upstream.target, upstream.body) == ("POST", READ, BODY)
    head = proxy.request("HEAD", "/_matrix/client/v3/sync", headers=ALLOW)
    assert head.status == 200 and head.body == b""


def test_an_unknown_failure_mode_is_closed(make_nginx, refusing_port):
    proxy = make_nginx(refusing_port.address, "opn")
    assert_matrix_error(proxy.request("GET", "/_matrix/client/v3/sync", headers=ALLOW), 503, "M_UNKNOWN")


@pytest.mark.parametrize("mode, status", [("closed", 503), ("open", 200)])
def test_roomguard_broken_follows_the_failure_mode(make_nginx, authz, mode, status):
    """roomguard up but answering 500: nginx's auth_request turns it into 500, handled as the failure mode."""
    proxy = make_nginx(authz.address, mode)
    response = proxy.request("GET", "/_matrix/client/v3/sync", headers={"Authorization": "Bearer broken"})
    assert response.status == status


def test_roomguard_too_slow_follows_the_failure_mode(make_nginx, authz):
    """proxy_read_timeout 2s: a roomguard that does not answer in time is a roomguard down."""
    proxy = make_nginx(authz.address, "closed")
    response = proxy.request("GET", "/_matrix/client/v3/sync", headers={"Authorization": "Bearer slow"}, timeout=10)
    assert_matrix_error(response, 503, "M_UNKNOWN")
    assert "upstream timed out" in proxy.error_log()


def test_absolute_form_request_target(nginx, authz, synapse):
    """`GET http://host/path` (allowed by HTTP/1.1): $request_uri is the path and query, as Synapse receives them."""
    response = nginx.request("GET", "http://matrix.example.com/_matrix/client/v3/sync?x=1", headers=ALLOW)
    assert response.status == 200
    assert authz_uris(authz) == ["/_matrix/client/v3/sync?x=1"]
    assert [s.target for s in synapse.recorder.snapshot()] == ["/_matrix/client/v3/sync?x=1"]
