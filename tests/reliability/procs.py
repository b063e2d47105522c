"""Test helper: a gateway's worker processes as /proc sees them (open files, memory), and raw HTTP streams."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path


def worker_pids(gateway) -> list[int]:
    """The gunicorn workers: the children of the gateway's master process."""
    master = gateway.proc.pid
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == master:  # fields[1] is the parent's pid
            found.append(int(entry.name))
    return sorted(found)


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def open_sockets(pid: int) -> int:
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except OSError:
            pass
    return count


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def http_request(path: str, body: dict, headers: dict) -> bytes:
    data = json.dumps(body).encode()
    head = [
        f"POST {path} HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: application/json",
        f"Content-Length: {len(data)}",
    ] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + data


def open_stream(
    gateway,
    path: str,
    body: dict,
    headers: dict,
    until: bytes,
    timeout: float = 10.0,
    rcvbuf: int | None = None,
) -> tuple[socket.socket, bytes]:
    """Send a streaming request on a raw socket and read until `until` has arrived."""
    sock = socket.socket()
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(timeout)
    sock.connect(("127.0.0.1", gateway.port))
    sock.sendall(http_request(path, body, headers))
    received = b""
    deadline = time.monotonic() + timeout
    while until not in received:
        piece = sock.recv(65536)
        if not piece or time.monotonic() > deadline:
            sock.close()
            raise AssertionError(f"the stream ended before {until!r}: {received[-500:]!r}")
        received += piece
    return sock, received


def hang_up(sock: socket.socket) -> float:
    """Close the connection at once (RST, as a killed client does); returns when."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()
    return time.time()
