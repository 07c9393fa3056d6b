"""roomguard's address, the module's `endpoint` key: parsed once at start-up into what the transport dials.

Three shapes, grpc's target syntax:

* `host:port` and `dns:///host:port`: a name (or an IP literal) resolved through DNS to one or more addresses, every
  one of them a roomguard replica; calls are spread over them round-robin (a Kubernetes headless Service gives one
  address per ready pod). `dns://dns-server[:port]/host:port` asks that DNS server instead of the system's resolver.
  An IPv6 literal is written in brackets: `[::1]:50051`.
* `unix:/path`, `unix:///path`: roomguard's Unix socket (`unix_socket`); `unix-abstract:name`, an abstract socket.

Anything else (a missing or non-numeric port, an unknown scheme, a space) is refused by `parse_endpoint` with a
message saying which part is wrong, so that a typo stops Synapse at start-up instead of failing every call.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

#: A DNS name: letters, digits, `-`, `_` (seen in Kubernetes and SRV-style names) and dots between labels.
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOST_NAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*\.?$")

#: The port a `dns://server/` authority uses when it names none.
DNS_PORT = 53


class EndpointError(ValueError):
    """`endpoint` is not one of the accepted shapes; the message says what is wrong (never more than the value)."""


@dataclass(frozen=True)
class DnsEndpoint:
    """A name (or IP literal) and a port: every address the name resolves to is a replica."""

    host: str
    port: int
    #: The DNS server to ask (`dns://server:port/...`); None: the system's resolver (`/etc/hosts`, `resolv.conf`).
    dns_server: tuple[str, int] | None = None

    @property
    def is_ip_literal(self) -> bool:
        """Whether `host` is an address already (nothing to resolve)."""
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


@dataclass(frozen=True)
class UnixEndpoint:
    """roomguard's Unix domain socket."""

    path: str
    #: A Linux abstract socket (`unix-abstract:name`): `path` is its name, without the leading NUL.
    abstract: bool = False


Endpoint = DnsEndpoint | UnixEndpoint


def parse_endpoint(text: str) -> Endpoint:
    """`text` as an `Endpoint`, or `EndpointError` saying what is wrong with it."""
    if not text or any(c.isspace() for c in text):
        raise EndpointError("must not be empty nor contain spaces")
    if text.startswith("unix-abstract:"):
        name = text[len("unix-abstract:") :]
        if not name:
            raise EndpointError("`unix-abstract:` needs a socket name")
        return UnixEndpoint(path=name, abstract=True)
    if text.startswith("unix:"):
        path = text[len("unix:") :]
        if path.startswith("//"):
            path = path[2:]  # unix:///run/x.sock: an empty authority
        if not path.startswith("/"):
            raise EndpointError("`unix:` needs an absolute socket path, e.g. `unix:/run/roomguard/roomguard.sock`")
        return UnixEndpoint(path=path)
    if text.startswith("dns:"):
        rest = text[len("dns:") :]
        dns_server: tuple[str, int] | None = None
        if rest.startswith("//"):
            authority, slash, rest = rest[2:].partition("/")
            if not slash:
                raise EndpointError("`dns://` needs `/` before the name: `dns:///host:port` (three slashes)")
            if authority:
                dns_server = _host_port(authority, default_port=DNS_PORT, what="the DNS server")
        return DnsEndpoint(*_host_port(rest, default_port=None, what="the name"), dns_server=dns_server)
    scheme, _, after = text.partition(":")
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*$", scheme) and ("/" in after or ":" in after):
        # `ipv4:10.0.0.1:50051`, `xds:///...`, `http://...`: grpc target schemes (or a URL) this module does not dial.
        raise EndpointError(f"scheme `{scheme}:` is not supported")
    return DnsEndpoint(*_host_port(text, default_port=None, what="the address"))


def _host_port(text: str, *, default_port: int | None, what: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port` (the port may be left out when there is a default)."""
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket:
            raise EndpointError(f"{what}: `[` without `]` around an IPv6 address")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise EndpointError(f"{what}: `{host}` is not an IPv6 address") from None
        if rest and not rest.startswith(":"):
            raise EndpointError(f"{what}: `:port` expected after `]`")
        port_text = rest[1:] if rest else None
    else:
        if text.count(":") > 1:
            raise EndpointError(f"{what}: an IPv6 address goes in brackets, e.g. `[::1]:50051`")
        host, colon, port_text_or_empty = text.partition(":")
        port_text = port_text_or_empty if colon else None
        if not _HOST_NAME.match(host):
            try:
                ipaddress.IPv4Address(host)
            except ValueError:
                raise EndpointError(f"{what}: `{host}` is not a host name nor an IP address") from None
    if port_text is None:
        if default_port is None:
            raise EndpointError(f"{what}: a port is required, e.g. `{host}:50051`")
        return host, default_port
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise EndpointError(f"{what}: port `{port_text}` is not a number from 1 to 65535")
    return host, int(port_text)
