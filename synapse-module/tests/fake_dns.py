"""A DNS server on loopback UDP that answers one name with a list of IPv4 addresses, for the `dns://` endpoint tests.

Real DNS, not a patched resolver: the client under test (grpc's c-ares resolver, or the module's own) sends real
queries to it through a `dns://127.0.0.1:<port>/<name>:<port>` endpoint, so one name resolving to several roomguard
replicas, and the answer changing while the client runs (pods coming and going), are exercised as in a cluster.
It answers `A` queries for its name with `addresses`, any other query for its name with no records, and any other name
with NXDOMAIN. Every query is counted.
"""

from __future__ import annotations

import socket
import struct
import threading

_TYPE_A = 1
_CLASS_IN = 1
_RCODE_NXDOMAIN = 3


class FakeDns:
    """Serves `name` -> `addresses` (mutable at any time) until `stop()`."""

    def __init__(self, name: str, addresses: list[str]) -> None:
        self.name = name.rstrip(".").lower()
        self.addresses = list(addresses)
        #: Number of `A` queries for `name` answered so far.
        self.queries = 0
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.1)
        self.port: int = self._socket.getsockname()[1]
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="fake-dns", daemon=True)

    def start(self) -> FakeDns:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()
        self._socket.close()

    def endpoint(self, port: int) -> str:
        """The module `endpoint` that asks this server for `name`, dialling `port` on each address."""
        return f"dns://127.0.0.1:{self.port}/{self.name}:{port}"

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                query, peer = self._socket.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            answer = self._answer(query)
            if answer is not None:
                self._socket.sendto(answer, peer)

    def _answer(self, query: bytes) -> bytes | None:
        if len(query) < 12:
            return None
        (query_id,) = struct.unpack("!H", query[:2])
        labels: list[str] = []
        offset = 12
        while offset < len(query) and query[offset] != 0:
            length = query[offset]
            labels.append(query[offset + 1 : offset + 1 + length].decode("ascii", "replace"))
            offset += 1 + length
        offset += 1
        if offset + 4 > len(query):
            return None
        qtype, _qclass = struct.unpack("!HH", query[offset : offset + 4])
        question = query[12 : offset + 4]
        name = ".".join(labels).lower()
        records = b""
        count = 0
        rcode = 0
        if name != self.name:
            rcode = _RCODE_NXDOMAIN
        elif qtype == _TYPE_A:
            self.queries += 1
            for address in list(self.addresses):
                # A pointer to the question's name, type A, class IN, a TTL of 1 s, four bytes of address.
                records += struct.pack("!HHHIH", 0xC00C, _TYPE_A, _CLASS_IN, 1, 4) + socket.inet_aton(address)
                count += 1
        flags = 0x8180 | rcode  # a response, recursion desired and available
        return struct.pack("!HHHHHH", query_id, flags, 1, count, 0, 0) + question + records
