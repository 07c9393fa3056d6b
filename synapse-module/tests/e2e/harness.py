"""Processes and HTTP for the end-to-end suite: a real roomguard binary, a real Synapse, real client-server API calls.

Every process is started on a free loopback port inside a temporary directory and registered in
`$ROOMGUARD_TEST_PIDDIR` (when set) so that `run-tests.sh` can stop it by id even if pytest itself dies.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

SERVER_NAME = "agent.finances.tchap.gouv.fr"


def free_port() -> int:
    """A port that was free a moment ago on 127.0.0.1 (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _register_pid(name: str, pid: int) -> None:
    piddir = os.environ.get("ROOMGUARD_TEST_PIDDIR")
    if piddir:
        Path(piddir, f"{name}.pid").write_text(str(pid))


def _unregister_pid(name: str) -> None:
    piddir = os.environ.get("ROOMGUARD_TEST_PIDDIR")
    if piddir:
        Path(piddir, f"{name}.pid").unlink(missing_ok=True)


def _stop_process(proc: subprocess.Popen, timeout_s: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


# === roomguard ===


def copy_policies_with_users(source: Path, dest: Path, extra_users: list[str]) -> Path:
    """A copy of the policy directory with per-user lines appended to `users.csv`."""
    shutil.copytree(source, dest)
    users = dest / "users.csv"
    existing = users.read_text() if users.exists() else ""
    if existing and not existing.endswith("\n"):
        existing += "\n"
    users.write_text(
        existing + "# added by the synapse-module end-to-end tests\n" + "".join(f"{u}\n" for u in extra_users)
    )
    return dest


@dataclass
class Roomguard:
    binary: Path
    policies: Path
    workdir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    starts: int = 0
    #: Names the pid file and the logs: several roomguards can run at once.
    name: str = "roomguard"
    #: More `serve` flags (TLS, token, ...).
    extra_args: list[str] = field(default_factory=list)
    #: Also serve on this Unix socket (`--unix-socket`).
    unix_socket: Path | None = None
    #: When the TCP listener is TLS: the CA to verify it with, and (mutual TLS) the client's (key, chain) PEM.
    tls_root: bytes | None = None
    tls_client: tuple[bytes, bytes] | None = None
    #: The loopback address it listens on (127.0.0.2, ... for replicas sharing one port).
    host: str = "127.0.0.1"
    #: Serve Prometheus metrics on `host:metrics_port` (`--metrics-listen`).
    metrics_port: int | None = None

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    def decisions_total(self) -> int:
        """The sum of `roomguard_decisions_total` over its labels, from the metrics endpoint."""
        assert self.metrics_port is not None
        with urllib.request.urlopen(f"http://{self.host}:{self.metrics_port}/metrics", timeout=5) as response:
            text = response.read().decode()
        samples = [line for line in text.splitlines() if line.startswith("roomguard_decisions_total")]
        return sum(int(float(line.rsplit(" ", 1)[1])) for line in samples)

    def kill(self) -> None:
        """SIGKILL: gone at once, connections reset, as a pod killed or a host lost."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=5)
        _unregister_pid(self.name)
        self.proc = None

    def log_text(self) -> str:
        """Everything this roomguard wrote (decision log on stdout, its own log on stderr), all starts."""
        return "".join(p.read_text(errors="replace") for p in sorted(self.workdir.glob(f"{self.name}.*.log")))

    def start(self, timeout_s: float = 30.0) -> None:
        self.starts += 1
        log = open(self.workdir / f"{self.name}.{self.starts}.log", "wb")
        command = [str(self.binary), "serve", "--listen", self.endpoint, "--policies", str(self.policies)]
        if self.unix_socket is not None:
            command += ["--unix-socket", str(self.unix_socket)]
        if self.metrics_port is not None:
            command += ["--metrics-listen", f"{self.host}:{self.metrics_port}"]
        self.proc = subprocess.Popen(
            command + self.extra_args,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
        )
        _register_pid(self.name, self.proc.pid)
        self.wait_healthy(timeout_s)

    def _health_channel(self) -> grpc.Channel:
        # Health needs no token; under TLS it needs the CA (and, for mutual TLS, a client certificate).
        if self.tls_root is None:
            return grpc.insecure_channel(self.endpoint)
        key, chain = self.tls_client if self.tls_client is not None else (None, None)
        credentials = grpc.ssl_channel_credentials(
            root_certificates=self.tls_root, private_key=key, certificate_chain=chain
        )
        return grpc.secure_channel(self.endpoint, credentials)

    def wait_healthy(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        with self._health_channel() as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while True:
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(f"roomguard exited with {self.proc.returncode}; see {self.workdir}")
                try:
                    reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"roomguard not healthy on {self.endpoint} after {timeout_s}s")
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None:
            _stop_process(self.proc)
            _unregister_pid(self.name)
            self.proc = None

    def pause(self) -> None:
        """SIGSTOP: the process keeps its sockets open but answers nothing (a hung server)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)


# === Synapse ===


@dataclass
class Synapse:
    workdir: Path
    module_config: dict[str, Any] | None
    server_name: str = SERVER_NAME
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    shared_secret: str = "roomguard-e2e-shared-secret"
    name: str = "synapse"
    #: More `homeserver.yaml` settings, applied last (e.g. `{"allow_guest_access": True}`).
    extra_config: dict[str, Any] = field(default_factory=dict)
    #: The module's log level. The suite runs it at DEBUG (it checks that even that never writes content); the latency
    #: bench runs it at INFO, as a production homeserver does.
    module_log_level: str = "DEBUG"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "homeserver.log"

    def configure(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config_path = self.workdir / "homeserver.yaml"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "synapse.app.homeserver",
                "--server-name",
                self.server_name,
                "--config-path",
                str(config_path),
                "--data-directory",
                str(self.workdir),
                "--generate-config",
                "--report-stats=no",
            ],
            check=True,
            cwd=self.workdir,
            stdout=subprocess.DEVNULL,
        )
        config = yaml.safe_load(config_path.read_text())
        unlimited = {"per_second": 10_000, "burst_count": 10_000}
        config.update(
            {
                "listeners": [
                    {
                        "port": self.port,
                        "bind_addresses": ["127.0.0.1"],
                        "type": "http",
                        "tls": False,
                        "x_forwarded": False,
                        "resources": [{"names": ["client"], "compress": False}],
                    }
                ],
                "database": {"name": "sqlite3", "args": {"database": str(self.workdir / "homeserver.db")}},
                "registration_shared_secret": self.shared_secret,
                "enable_registration": False,
                "trusted_key_servers": [],
                "suppress_key_server_warning": True,
                "federation_domain_whitelist": [],
                "report_stats": False,
                # Synapse refuses every directory publication unless a rule allows it: roomguard decides.
                "room_list_publication_rules": [{"action": "allow"}],
                "rc_message": unlimited,
                "rc_registration": unlimited,
                "rc_login": {"address": unlimited, "account": unlimited, "failed_attempts": unlimited},
                "rc_joins": {"local": unlimited, "remote": unlimited},
                "rc_joins_per_room": unlimited,
                "rc_room_creation": unlimited,
                "rc_invites": {"per_room": unlimited, "per_user": unlimited, "per_issuer": unlimited},
                "rc_3pid_validation": unlimited,
                "rc_presence": {"per_user": unlimited},
                "log_config": str(self.workdir / "log.config"),
            }
        )
        config.update(self.extra_config)
        if self.module_config is not None:
            config["modules"] = [{"module": "synapse_roomguard.RoomguardModule", "config": self.module_config}]
        config_path.write_text(yaml.safe_dump(config))
        (self.workdir / "log.config").write_text(
            yaml.safe_dump(
                {
                    "version": 1,
                    "formatters": {
                        "precise": {"format": "%(asctime)s - %(name)s - %(levelname)s - %(request)s - %(message)s"}
                    },
                    "filters": {"context": {"()": "synapse.logging.context.LoggingContextFilter"}},
                    "handlers": {
                        "file": {
                            "class": "logging.FileHandler",
                            "formatter": "precise",
                            "filename": str(self.log_path),
                            "filters": ["context"],
                            "encoding": "utf8",
                        }
                    },
                    # The module at DEBUG: the suite checks that even its most verbose logging never writes content.
                    "loggers": {
                        "synapse_roomguard": {"level": self.module_log_level},
                        "synapse.storage.SQL": {"level": "WARNING"},
                    },
                    "root": {"level": "INFO", "handlers": ["file"]},
                    "disable_existing_loggers": False,
                }
            )
        )
        return config_path

    def start(self, timeout_s: float = 60.0) -> None:
        config_path = (
            self.configure() if not (self.workdir / "homeserver.yaml").exists() else self.workdir / "homeserver.yaml"
        )
        out = open(self.workdir / "stdout.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "synapse.app.homeserver", "--config-path", str(config_path)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
        )
        _register_pid(self.name, self.proc.pid)
        deadline = time.monotonic() + timeout_s
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"Synapse exited with {self.proc.returncode}:\n{(self.workdir / 'stdout.log').read_text()[-3000:]}"
                )
            try:
                status, _ = request("GET", f"{self.base_url}/_matrix/client/versions", timeout=2)
                if status == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"Synapse did not answer on {self.base_url} after {timeout_s}s")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is not None:
            _stop_process(self.proc, timeout_s=15)
            _unregister_pid(self.name)
            self.proc = None

    def register(self, localpart: str, *, admin: bool = False) -> Client:
        """Register a user through the shared-secret admin API and return a logged-in client."""
        url = f"{self.base_url}/_synapse/admin/v1/register"
        _, body = request("GET", url)
        nonce = body["nonce"]
        password = f"pw-{localpart}-e2e"
        mac = hmac.new(self.shared_secret.encode(), digestmod=hashlib.sha1)
        mac.update(
            b"\x00".join([nonce.encode(), localpart.encode(), password.encode(), b"admin" if admin else b"notadmin"])
        )
        status, body = request(
            "POST",
            url,
            {"nonce": nonce, "username": localpart, "password": password, "admin": admin, "mac": mac.hexdigest()},
        )
        assert status == 200, body
        return Client(self.base_url, body["access_token"], body["user_id"])

    def register_guest(self) -> Response:
        """`POST /register?kind=guest`: a guest account (200 only where `allow_guest_access` is on)."""
        started = time.monotonic()
        status, body = request("POST", f"{self.base_url}/_matrix/client/v3/register?kind=guest", {})
        return Response(status, body, time.monotonic() - started)

    def guest(self) -> Client:
        resp = self.register_guest()
        assert resp.status == 200, resp.body
        return Client(self.base_url, resp.body["access_token"], resp.body["user_id"])


# === HTTP ===


def request(method: str, url: str, body: Any = None, token: str | None = None, timeout: float = 30) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as err:
        raw = err.read()
        try:
            return err.code, json.loads(raw)
        except ValueError:
            return err.code, {"raw": raw.decode(errors="replace")}


def request_bytes(
    method: str, url: str, data: bytes | None, *, token: str, content_type: str | None = None, timeout: float = 60
) -> tuple[int, bytes]:
    """An HTTP request with a raw body and a raw answer (media upload and download)."""
    req = urllib.request.Request(url, data=data, method=method)
    if content_type:
        req.add_header("Content-Type", content_type)
    req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


@dataclass
class Response:
    status: int
    body: Any
    seconds: float


@dataclass
class Client:
    """A Matrix client-server API user, speaking plain HTTP to Synapse."""

    base_url: str
    token: str
    user_id: str
    _txn: int = 0

    def call(self, method: str, path: str, body: Any = None) -> Response:
        started = time.monotonic()
        status, payload = request(method, f"{self.base_url}/_matrix/client/v3{path}", body, self.token)
        return Response(status, payload, time.monotonic() - started)

    def create_room(self, **config: Any) -> Response:
        return self.call("POST", "/createRoom", config)

    def create_room_id(self, **config: Any) -> str:
        resp = self.create_room(**config)
        assert resp.status == 200, resp.body
        return resp.body["room_id"]

    def join(self, room_id: str) -> Response:
        return self.call("POST", f"/join/{urllib.parse.quote(room_id)}", {})

    def invite(self, room_id: str, user_id: str) -> Response:
        return self.call("POST", f"/rooms/{urllib.parse.quote(room_id)}/invite", {"user_id": user_id})

    def send(self, room_id: str, content: dict[str, Any], event_type: str = "m.room.message") -> Response:
        self._txn += 1
        txn = f"{time.time_ns()}-{self._txn}"
        return self.call("PUT", f"/rooms/{urllib.parse.quote(room_id)}/send/{event_type}/{txn}", content)

    def send_text(self, room_id: str, text: str) -> Response:
        return self.send(room_id, {"msgtype": "m.text", "body": text})

    def set_state(self, room_id: str, event_type: str, content: dict[str, Any], state_key: str = "") -> Response:
        return self.call("PUT", f"/rooms/{urllib.parse.quote(room_id)}/state/{event_type}/{state_key}", content)

    def set_directory_visibility(self, room_id: str, visibility: str) -> Response:
        return self.call("PUT", f"/directory/list/room/{urllib.parse.quote(room_id)}", {"visibility": visibility})

    def upload(self, data: bytes, filename: str, content_type: str) -> Response:
        """`POST /_matrix/media/v3/upload?filename=...`: 200 `{"content_uri": "mxc://..."}` when stored."""
        url = f"{self.base_url}/_matrix/media/v3/upload?filename={urllib.parse.quote(filename)}"
        started = time.monotonic()
        status, raw = request_bytes("POST", url, data, token=self.token, content_type=content_type)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {"raw": raw.decode(errors="replace")}
        return Response(status, body, time.monotonic() - started)

    def download(self, content_uri: str) -> tuple[int, bytes]:
        """`GET /_matrix/client/v1/media/download/{server}/{id}` (authenticated media)."""
        server, media_id = content_uri.removeprefix("mxc://").split("/", 1)
        url = f"{self.base_url}/_matrix/client/v1/media/download/{server}/{media_id}"
        return request_bytes("GET", url, None, token=self.token)

    def directory_visibility(self, room_id: str) -> str:
        resp = self.call("GET", f"/directory/list/room/{urllib.parse.quote(room_id)}")
        assert resp.status == 200, resp.body
        return resp.body["visibility"]
