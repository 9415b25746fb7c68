"""A switchable TCP fault proxy: put it between a service and its upstream to make the network fail.

Modes (:meth:`FaultProxy.set_mode`):

- ``forward``: bytes pass both ways unchanged;
- ``refuse``: the listener is closed, so a connection attempt gets a RST (connection refused);
- ``blackhole``: connections are accepted and read, and nothing is ever answered;
- ``slow``: like forward, but the upstream's first response bytes are held for ``delay`` seconds;
- ``cut``: like forward, but the connection is closed once the response has carried ``after``
  bytes, or ``after`` occurrences of ``marker`` (a stream that stops mid-way, with no error in it);
- ``stall``: like cut, but the connection stays open and nothing more is forwarded (an upstream
  that stops answering mid-stream).

A switch closes the connections open (with a reset), as an upstream that goes away does, so a kept-alive
connection cannot carry on past a fault; ``cut`` also ends with a reset unless ``reset=False`` (then a
plain close, FIN). Every
connection is recorded (mode, request and response bytes), so a test can check that the service
really went through the fault it meant to cause.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Literal

Mode = Literal["forward", "refuse", "blackhole", "slow", "cut", "stall"]


@dataclass
class Connection:
    mode: str
    opened: float
    request_bytes: int = 0
    response_bytes: int = 0
    faulted: bool = False
    closed: float | None = None


@dataclass
class FaultProxy:
    listen_host: str
    upstream: tuple[str, int]
    port: int = 0
    mode: Mode = "forward"
    delay: float = 0.0
    after: int = 0
    marker: bytes | None = None
    reset: bool = True
    connections: list[Connection] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._stopped = False
        self._listen()

    # -- control -------------------------------------------------------------------------------

    def set_mode(
        self, mode: Mode, *, delay: float = 0.0, after: int = 0, marker: bytes | None = None, reset: bool = True
    ) -> None:
        with self._lock:
            self.mode, self.delay, self.after, self.marker, self.reset = mode, delay, after, marker, reset
            sockets, self._sockets = list(self._sockets), set()
        for sock in sockets:
            _reset(sock)
        if mode == "refuse":
            self._close_listener()
        elif self._listener is None:
            self._listen()

    def opened_since(self, index: int) -> list[Connection]:
        with self._lock:
            return list(self.connections[index:])

    def close(self) -> None:
        self._stopped = True
        self._close_listener()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- listener ------------------------------------------------------------------------------

    def _listen(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.listen_host, self.port))
        sock.listen(64)
        self.port = sock.getsockname()[1]
        self._listener = sock
        threading.Thread(target=self._accept, args=(sock,), daemon=True).start()

    def _close_listener(self) -> None:
        sock, self._listener = self._listener, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                conn = Connection(self.mode, time.time())
                self.connections.append(conn)
                settings = (self.mode, self.delay, self.after, self.marker, self.reset)
                self._sockets.add(client)
            threading.Thread(target=self._serve, args=(client, conn, *settings), daemon=True).start()

    # -- one connection ------------------------------------------------------------------------

    def _serve(
        self,
        client: socket.socket,
        conn: Connection,
        mode: str,
        delay: float,
        after: int,
        marker: bytes | None,
        reset: bool,
    ) -> None:
        upstream: socket.socket | None = None
        try:
            if mode == "blackhole":
                while not self._stopped and (data := client.recv(65536)):
                    conn.request_bytes += len(data)
                return
            upstream = socket.create_connection(self.upstream, timeout=10)
            upstream.settimeout(None)
            with self._lock:
                self._sockets.add(upstream)
            threading.Thread(target=self._pump_request, args=(client, upstream, conn), daemon=True).start()
            first = True
            seen = b""
            while data := upstream.recv(65536):
                if first and mode == "slow":
                    time.sleep(delay)
                first = False
                if mode in ("cut", "stall"):
                    if marker is None:
                        keep = max(0, after - conn.response_bytes)
                    else:
                        seen += data
                        keep = len(data) if seen.count(marker) < after else -1
                    if keep < len(data):
                        # Up to the end of the chunk that completes the count (a whole SSE event).
                        client.sendall(data if keep < 0 else data[:keep])
                        conn.response_bytes += len(data) if keep < 0 else keep
                        conn.faulted = True
                        if mode == "stall":
                            while not self._stopped and client.recv(65536):
                                pass
                        elif reset:
                            _reset(client)
                        return
                client.sendall(data)
                conn.response_bytes += len(data)
        except OSError:
            pass
        finally:
            conn.closed = time.time()
            for sock in (client, upstream):
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.close()

    @staticmethod
    def _pump_request(client: socket.socket, upstream: socket.socket, conn: Connection) -> None:
        try:
            while data := client.recv(65536):
                conn.request_bytes += len(data)
                upstream.sendall(data)
            upstream.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def _reset(sock: socket.socket) -> None:
    """Close with a RST (SO_LINGER 0), as a vanished peer or a middlebox that drops a connection does."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()
