"""Where roomguard is: the addresses of the `endpoint`, asked again and again so that replicas can come and go.

An IP literal or a Unix socket is its own single address. A name is resolved by

* the system's resolver (`getaddrinfo`, in Twisted's resolver thread pool: `/etc/hosts`, `resolv.conf` and its
  search domains, as every other program on the host), or
* the DNS server named in the endpoint (`dns://server:port/name:port`), with Twisted's DNS client on the reactor
  (`A` and `AAAA` records).

Every address the name resolves to is a replica (a Kubernetes headless Service answers one address per ready pod).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twisted.internet import defer
from twisted.internet.address import IPv4Address, IPv6Address

from .endpoint import DnsEndpoint, Endpoint, UnixEndpoint


@dataclass(frozen=True, order=True)
class Address:
    """One place to dial: an IP and a port, or a Unix socket path (`port` 0)."""

    host: str
    port: int
    unix: bool = False
    #: Linux abstract Unix socket (`host` is its name).
    abstract: bool = False

    def __str__(self) -> str:
        if self.unix:
            return f"unix-abstract:{self.host}" if self.abstract else f"unix:{self.host}"
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


class NoAddressError(Exception):
    """The name resolved to nothing (or could not be resolved); the message is the kind of failure."""


class AddressResolver:
    """`resolve()` gives the current addresses of an `Endpoint`, sorted (so that a change is a difference)."""

    def __init__(self, endpoint: Endpoint, reactor: Any) -> None:
        self._endpoint = endpoint
        self._reactor = reactor
        self._dns_client: Any = None
        if isinstance(endpoint, DnsEndpoint) and endpoint.dns_server is not None:
            from twisted.names import client as dns_client

            self._dns_client = dns_client.Resolver(servers=[endpoint.dns_server], reactor=reactor)

    @property
    def is_static(self) -> bool:
        """Whether the answer can never change (an IP literal, a Unix socket): no need to ask again."""
        endpoint = self._endpoint
        return isinstance(endpoint, UnixEndpoint) or endpoint.is_ip_literal

    def resolve(self) -> defer.Deferred[list[Address]]:
        endpoint = self._endpoint
        if isinstance(endpoint, UnixEndpoint):
            return defer.succeed([Address(endpoint.path, 0, unix=True, abstract=endpoint.abstract)])
        if endpoint.is_ip_literal:
            return defer.succeed([Address(endpoint.host, endpoint.port)])
        if self._dns_client is not None:
            return defer.ensureDeferred(self._ask_dns_server(endpoint))
        return self._ask_system(endpoint)

    async def _ask_dns_server(self, endpoint: DnsEndpoint) -> list[Address]:
        from twisted.names import dns

        answers: set[Address] = set()
        failures = 0
        for lookup in (self._dns_client.lookupAddress, self._dns_client.lookupIPV6Address):
            try:
                records, _, _ = await lookup(endpoint.host.rstrip("."), timeout=(1, 2))
            except Exception:  # NXDOMAIN, no AAAA records, timeout: the other family may still answer
                failures += 1
                continue
            for record in records:
                if record.type in (dns.A, dns.AAAA):
                    answers.add(
                        Address(record.payload.dottedQuad() if record.type == dns.A else _ipv6(record), endpoint.port)
                    )
        if not answers:
            raise NoAddressError("no A/AAAA record" if failures < 2 else "DNS lookup failed")
        return sorted(answers)

    def _ask_system(self, endpoint: DnsEndpoint) -> defer.Deferred[list[Address]]:
        result: defer.Deferred[list[Address]] = defer.Deferred()
        found: set[Address] = set()

        class Receiver:
            def resolutionBegan(self, _resolution: Any) -> None:  # noqa: N802 - Twisted's name
                pass

            def addressResolved(self, address: Any) -> None:  # noqa: N802 - Twisted's name
                if isinstance(address, IPv4Address | IPv6Address):
                    found.add(Address(address.host, endpoint.port))

            def resolutionComplete(self) -> None:  # noqa: N802 - Twisted's name
                if found:
                    result.callback(sorted(found))
                else:
                    result.errback(NoAddressError("name not resolved"))

        self._reactor.nameResolver.resolveHostName(Receiver(), endpoint.host, endpoint.port)
        return result


def _ipv6(record: Any) -> str:
    import socket

    return socket.inet_ntop(socket.AF_INET6, record.payload.address)
