"""Hostile clients seen from outside, against the real binary with grpcio and raw sockets: bytes that are not a
request, sockets that never speak, and a SIGTERM while clients hold connections."""

import socket
import time

import grpc

from test_operations import Serve

SEND = "/roomguard.v1.PolicyService/CheckMessageSend"


def raw_call(channel, payload):
    """A unary call whose request is `payload` as is (no serializer): what a buggy or hostile client sends."""
    call = channel.unary_unary(SEND, request_serializer=None, response_deserializer=None)
    try:
        call(payload, timeout=5)
    except grpc.RpcError as err:
        return err.code(), err.details()
    return grpc.StatusCode.OK, ""


def test_undecodable_requests_are_invalid_argument(binary):
    """Invalid UTF-8 in a string field, a wrong wire type, a truncated field: INVALID_ARGUMENT, never INTERNAL."""
    server = Serve(binary)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            server.wait_ready(channel)
            for payload in (b"\x0a\x01\xff", b"\x0d\x00\x00\x00\x00", b"\x0a\x10ab"):
                code, details = raw_call(channel, payload)
                assert code == grpc.StatusCode.INVALID_ARGUMENT, (payload, code, details)
            _, details = raw_call(channel, b"\x0a\x01\xff")
            assert "request_id" in details, details
    finally:
        server.stop()


def test_silent_socket_is_closed_after_the_handshake_timeout(binary):
    """A TCP connection that never sends the HTTP/2 preface is closed by the server once the timeout is over."""
    server = Serve(binary, "--handshake-timeout-ms", "300")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            server.wait_ready(channel)
        sock = socket.create_connection(("127.0.0.1", server.port))
        sock.settimeout(5)
        started = time.monotonic()
        assert sock.recv(16) == b""
        assert 0.2 < time.monotonic() - started < 4
        sock.close()
    finally:
        server.stop()


def test_sigterm_exits_within_the_grace_period_while_clients_hold_connections(binary):
    """SIGTERM with a silent socket and an idle grpcio channel open: the process exits 0 within the grace period."""
    server = Serve(binary, "--shutdown-grace-ms", "500")
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    server.wait_ready(channel)
    silent = socket.create_connection(("127.0.0.1", server.port))
    try:
        started = time.monotonic()
        assert server.stop() == 0
        assert time.monotonic() - started < 5
    finally:
        silent.close()
        channel.close()
