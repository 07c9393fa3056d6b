"""Several roomguard replicas sharing one real Redis, as processes on loopback (test_replicas.py and
scripts/bench-join-counter.py)."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import grpc

from conftest import free_port

PUBLIC_JOINS_PER_HOUR = 20  # the shipped rule join.rate refuses the 21st


def redis_server_binary():
    """`redis-server` from PATH: scripts/test installs it (Debian package redis-server) when it is missing."""
    path = shutil.which("redis-server")
    assert path, "redis-server is not installed: run scripts/test, which installs it (apt-get install redis-server)"
    return path


class RedisServer:
    """A real Redis on a free loopback port, appending every write to its AOF file (fsync always), so that a restart
    keeps the counts, as a Redis with persistence would."""

    def __init__(self, persistent=True, password=None):
        self.password = password
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="roomguard-redis-")
        self.persistent = persistent
        self.proc = None
        self.start()

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.persistent else ["--appendonly", "no"]
        self.proc = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--dir", self.dir,
             "--daemonize", "no", *persistence, *(["--requirepass", self.password] if self.password else [])],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while True:
            try:
                if self.command("PING") in ("+PONG", "-NOAUTH Authentication required."):
                    return
            except OSError:
                pass
            assert self.proc.poll() is None, "redis-server exited at start"
            assert time.monotonic() < deadline, "redis-server did not answer PING within 15 s"
            time.sleep(0.05)

    def stop(self):
        """SIGTERM: Redis flushes its AOF and exits."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=15)

    def command(self, *words):
        """One command in the inline protocol; the first line of the answer."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            s.sendall((" ".join(words) + "\r\n").encode())
            return s.makefile("rb").readline().decode().rstrip("\r\n")

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Replica:
    """`roomguard serve` counting public joins in `redis_url`, with metrics and a decision log of its own."""

    def __init__(self, binary, policies, redis_url, *args, fallback="local", env=None):
        self.port = free_port()
        self.metrics_port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.stderr = tempfile.TemporaryFile()
        self.decision_log = Path(tempfile.mkdtemp(prefix="roomguard-replica-")) / "decisions.ndjson"
        self.proc = subprocess.Popen(
            [str(binary), "serve", "--listen", self.addr, "--policies", str(policies),
             "--metrics-listen", f"127.0.0.1:{self.metrics_port}", "--decision-log", str(self.decision_log), *args],
            stdout=subprocess.DEVNULL,
            stderr=self.stderr,
            env={**os.environ, "RUST_LOG": "info", "ROOMGUARD_COUNTERS_BACKEND": "redis" if redis_url else "memory",
                 **({"ROOMGUARD_COUNTERS_REDIS_URL": redis_url, "ROOMGUARD_COUNTERS_FALLBACK": fallback}
                    if redis_url else {}), **(env or {})},
        )
        self.channel = grpc.insecure_channel(self.addr)
        grpc.channel_ready_future(self.channel).result(timeout=30)

    def log(self):
        self.stderr.seek(0)
        return self.stderr.read().decode("utf-8", "replace")

    def metric(self, name):
        """The value of an unlabelled metric."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as answer:
            for line in answer.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
        raise AssertionError(f"{name} is not in the metrics")

    def kill(self):
        """SIGKILL: the replica dies with whatever it was doing (its clients' channels stay open, as in a real crash)."""
        self.proc.kill()
        self.proc.wait(timeout=15)

    def stop(self):
        self.channel.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=15)


def public_join(pb, user_id, n):
    """A join of a public room without an invite: one that counts towards the user's public-join rate."""
    p = pb[0]
    return p.CheckRoomJoinRequest(
        request_id=f"join-{n}",
        user=p.Subject(user_id=user_id),
        room=p.Room(room_id=f"!forum{n}:agent.tchap.gouv.fr", join_rule=p.JOIN_RULE_PUBLIC,
                    history_visibility=p.HISTORY_VISIBILITY_SHARED),
    )


def wait_for(condition, timeout, what):
    """Polls `condition` until it holds; the time it took."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"{what}: not within {timeout} s"
        time.sleep(0.02)
    return time.monotonic() - started
