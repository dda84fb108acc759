"""A paho-mqtt client whose socket reads in large chunks and can write in batches.

paho-mqtt reads a packet with three ``recv`` calls (its first byte, its length, its body)
and writes every packet with a ``send`` of its own: at thousands of messages a second that
is a system call per few hundred bytes, the largest single cost of a publisher after
paho's own Python. :class:`BufferedClient` is paho's client on a :class:`BufferedSocket`:

- reads fill a user-space buffer up to 64 KiB at a time and paho's small reads are served
  from it. ``pending()`` says how much is buffered — paho's own ``loop()`` already asks
  the socket that (as of an SSL socket), and an event-loop reader must ask it too: data
  in the buffer no longer wakes ``select``;
- writes go straight to the socket unless the owner *corks* it (:meth:`BufferedSocket.corked`):
  then packets are gathered and sent together when it is uncorked — a blocking program
  around a block of publishes or a read of acknowledgements (:meth:`BufferedClient.pump`),
  waiting for the socket if it must; an event loop around paho's ``loop_write``, never
  waiting (what the kernel does not take is held, and sent in order when it is writable).
  A cork is held only for the length of such a call: one held by nobody would starve
  keepalives.

TLS works the same (the buffer sits above the TLS socket, whose own ``pending()`` is
added). The client is paho's in every other respect; the socket is put in place through
paho 2's socket factory (``Client._create_socket``), the one hook paho has for it — a test
checks that it still is (``tests/stream/test_mqtt_socket.py``).
"""

from __future__ import annotations

import contextlib
import select
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final

import paho.mqtt.client as mqtt

from stream.mqtt_properties import install as install_properties

if TYPE_CHECKING:
    from paho.mqtt.client import SocketLike

__all__ = ["BufferedClient", "BufferedSocket"]

_READ_SIZE: Final = 65536
_FLUSH_TIMEOUT_S: Final = 30.0
_PUMP_READS: Final = 1000


class BufferedSocket:
    """A socket-like object for paho: buffered reads, writes gathered while corked.

    Args:
        sock: the connected socket (plain or TLS) paho created.
        read_size: bytes asked of the kernel per ``recv``.
        flush_timeout_s: how long the end of a cork may wait for the broker to read.
    """

    def __init__(
        self,
        sock: SocketLike,
        read_size: int = _READ_SIZE,
        flush_timeout_s: float = _FLUSH_TIMEOUT_S,
    ) -> None:
        self._sock = sock
        self._read_size = read_size
        self._flush_timeout_s = flush_timeout_s
        self._rbuf = b""
        self._rpos = 0
        self._wbuf = bytearray()
        self._corked = False
        self.recv_calls = 0
        """System reads made (for tests and benchmarks)."""
        self.send_calls = 0
        """System writes made (for tests and benchmarks)."""

    # -- reading ----------------------------------------------------------------------------

    def recv(self, bufsize: int) -> bytes:
        """Up to ``bufsize`` bytes, from the buffer or, when it is empty, one large read.

        Raises what the socket raises (``BlockingIOError`` when nothing is there, the TLS
        want-read/write errors); ``b""`` at the end of the stream.
        """
        buf, pos = self._rbuf, self._rpos
        if pos >= len(buf):
            buf = self._sock.recv(max(bufsize, self._read_size))
            self.recv_calls += 1
            if not buf:
                return buf
            pos = 0
        end = pos + bufsize
        if pos == 0 and end >= len(buf):
            self._rbuf, self._rpos = b"", 0
            return buf
        self._rbuf, self._rpos = buf, end
        return buf[pos:end]

    def pending(self) -> int:
        """Bytes readable without waiting: the buffer's and the TLS layer's."""
        buffered = len(self._rbuf) - self._rpos if self._rpos < len(self._rbuf) else 0
        tls_pending = getattr(self._sock, "pending", None)
        return buffered + (tls_pending() if tls_pending is not None else 0)

    # -- writing ----------------------------------------------------------------------------

    def send(self, data: bytes | bytearray) -> int:
        """Send (or, while corked, gather) ``data``; the number of bytes taken.

        Bytes still held from a cork that could not be sent in full go first: ``data`` then
        joins them.
        """
        if self._corked or self._wbuf:
            self._wbuf += data
            if not self._corked:
                self._send_some()
            return len(data)
        self.send_calls += 1
        return self._sock.send(data)

    @property
    def held(self) -> int:
        """Bytes gathered and not sent yet (after a cork that did not wait)."""
        return len(self._wbuf)

    @contextlib.contextmanager
    def corked(self, *, wait: bool = True) -> Iterator[None]:
        """Gather writes for the duration; send them together at the end.

        ``wait`` (a blocking program): the final send waits (in ``select``) while the
        socket's buffer is full — the broker reading slower than we write is back-pressure
        on the publisher — and raises ``ConnectionError`` when it cannot finish within
        ``flush_timeout_s`` (what was not sent is dropped with the connection: paho resends
        unacknowledged QoS 1/2 messages on the next one), ``OSError`` when the connection
        fails. Without ``wait`` (an event loop, which must never block): what the socket
        does not take now is :attr:`held`, and sent by :meth:`send_held` when it is
        writable again.
        """
        self._corked = True
        try:
            yield
        finally:
            self._corked = False
            if wait:
                self.flush()
            else:
                self._send_some()

    def send_held(self) -> int:
        """Send what the socket takes now of the held bytes; the number still held."""
        self._send_some()
        return len(self._wbuf)

    def _send_some(self) -> None:
        done = 0
        try:
            while done < len(self._wbuf):
                with memoryview(self._wbuf) as view:
                    sent = self._sock.send(view[done:])  # type: ignore[arg-type]
                self.send_calls += 1
                done += sent
        except BlockingIOError:
            pass
        finally:
            del self._wbuf[:done]

    def flush(self) -> None:
        """Send whatever was gathered, waiting for the socket (see :meth:`corked`)."""
        deadline = time.monotonic() + self._flush_timeout_s
        try:
            while self._wbuf:
                if self.send_held() == 0:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    msg = f"the broker read nothing for {self._flush_timeout_s:g} s"
                    raise ConnectionError(msg)
                select.select([], [self._sock], [], min(left, 1.0))
        except BaseException:
            self._wbuf.clear()
            raise

    # -- the rest of the socket -------------------------------------------------------------

    def fileno(self) -> int:
        """The socket's descriptor (for ``select`` and event loops)."""
        return self._sock.fileno()

    def setblocking(self, flag: bool) -> None:
        """Set the socket's blocking mode (paho makes it non-blocking)."""
        self._sock.setblocking(flag)

    def close(self) -> None:
        """Close the socket, after sending what the kernel takes of the gathered bytes.

        paho closes the socket right after it has "written" a DISCONNECT: inside a cork
        that packet (and the acknowledgements before it) is still here, and must leave
        first, or the broker sees the connection drop instead of a clean disconnect.
        """
        self._rbuf, self._rpos = b"", 0
        if self._wbuf:
            with contextlib.suppress(OSError):
                self._send_some()
        self._wbuf.clear()
        self._sock.close()

    def __getattr__(self, name: str) -> Any:
        # Anything else paho may ask of the socket (settimeout, getpeername, ...).
        return getattr(self._sock, name)


class BufferedClient(mqtt.Client):
    """paho's client on a :class:`BufferedSocket` (see the module's documentation).

    A blocking program (a publisher, a load generator) drives it with :meth:`pump` and
    :meth:`wait` instead of paho's ``loop()``, which would give it a wake-up socket pair
    and then write a byte to that for every message queued. An event loop drives it with
    paho's socket callbacks, as :class:`~stream.consumer.Consumer` does.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        install_properties()  # paho's MQTT 5 properties without per-packet table building
        super().__init__(*args, **kwargs)

    def _create_socket(self) -> SocketLike:
        return BufferedSocket(super()._create_socket())

    @property
    def buffered_socket(self) -> BufferedSocket | None:
        """The current connection's socket, while connected."""
        sock = self.socket()
        return sock if isinstance(sock, BufferedSocket) else None

    def _connection(self) -> BufferedSocket:
        sock = self.buffered_socket
        if sock is None:
            msg = "not connected to the broker"
            raise ConnectionError(msg)
        return sock

    def pump(self) -> None:
        """Handle what the broker has sent, without waiting; then paho's chores.

        The socket stays corked meanwhile, so what the packets make paho send (the
        acknowledgements of messages received, messages that waited for a free in-flight
        slot) leaves in one write. At most ``_PUMP_READS`` reads a call: a broker that never
        stops sending cannot keep the caller here (what is left is read on the next call,
        which :meth:`wait` makes at once).

        Raises:
            ConnectionError: when the connection is lost (or was never made).
        """
        sock = self._connection()
        with sock.corked():
            for _ in range(_PUMP_READS):
                if self.loop_read() != mqtt.MQTT_ERR_SUCCESS:
                    msg = "lost the broker"
                    raise ConnectionError(msg)
                if not sock.pending():
                    break
            self.loop_misc()

    def wait(self, timeout_s: float) -> None:
        """Wait up to ``timeout_s`` for the broker to say something, then :meth:`pump`."""
        sock = self._connection()
        if not sock.pending():
            select.select([sock], [], [], timeout_s)
        self.pump()
