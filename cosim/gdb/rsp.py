"""The GDB remote serial protocol (RSP) at the byte level: framing,
checksums, escapes and run-length decoding, and a socket link that reads
whole packets.

Only what the co-simulator's proxy between gdb and QEMU's gdbstub needs
(GDB manual, "Remote Protocol", "Overview" and "Packet Acknowledgment").
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from dataclasses import dataclass

DEBUG = bool(os.environ.get("COSIM_RSP_DEBUG"))
"""COSIM_RSP_DEBUG=1: every packet on stderr (for debugging the proxy)."""

INTERRUPT = 0x03
"""The byte gdb sends to stop a running target (not a packet)."""

STOP_REPLY_KINDS = "TSWXN"
"""First letters of stop replies (GDB manual, "Stop Reply Packets")."""

_ESCAPED = b"#$}*"


class RspError(Exception):
    """A malformed packet or a closed connection."""


def checksum(payload: bytes) -> int:
    return sum(payload) & 0xFF


def escape(payload: bytes) -> bytes:
    out = bytearray()
    for b in payload:
        if b in _ESCAPED:
            out += bytes((0x7D, b ^ 0x20))
        else:
            out.append(b)
    return bytes(out)


def frame(payload: str | bytes) -> bytes:
    """`$payload#cs` with `#`, `$`, `}` and `*` escaped."""
    data = escape(payload.encode("latin-1") if isinstance(payload, str) else payload)
    return b"$" + data + b"#" + f"{checksum(data):02x}".encode()


def unescape(data: bytes) -> bytes:
    """The packet data after escapes and run-length encoding are undone."""
    out = bytearray()
    i = 0
    while i < len(data):
        b = data[i]
        if b == 0x7D and i + 1 < len(data):
            out.append(data[i + 1] ^ 0x20)
            i += 2
        elif b == 0x2A and out and i + 1 < len(data):  # '*': repeat the last byte
            out += bytes((out[-1],)) * (data[i + 1] - 29)
            i += 2
        else:
            out.append(b)
            i += 1
    return bytes(out)


@dataclass(frozen=True)
class Item:
    """What arrived on a link: a packet, an ack ('+'/'-') or an interrupt."""

    kind: str  # "packet", "ack", "nak", "interrupt"
    data: str = ""


def is_stop_reply(packet: str) -> bool:
    return bool(packet) and packet[0] in STOP_REPLY_KINDS and packet != "OK"


def is_resume(packet: str) -> bool:
    """c, C, s, S and vCont actions (not the vCont? query)."""
    if packet.startswith("vCont;"):
        return True
    return bool(packet) and packet[0] in "cCsS"


def hex_text(text: str) -> str:
    return text.encode("utf-8").hex()


def unhex_text(data: str) -> str:
    return bytes.fromhex(data).decode("utf-8", "replace")


def le_hex_to_int(data: str) -> int:
    """A register value as gdbstub sends it: target-endian (little) hex bytes."""
    return int.from_bytes(bytes.fromhex(data), "little")


def stop_thread(packet: str) -> str | None:
    """The thread id of a T stop reply (`thread:ID;`), as written."""
    for part in packet[3:].split(";"):
        if part.startswith("thread:"):
            return part[len("thread:"):]
    return None


def thread_cpu(thread: str) -> int:
    """The vCPU index of a gdbstub thread id ('3', 'p1.3', 'p01.03'): thread n is vCPU n-1."""
    tid = thread.split(".")[-1]
    return int(tid, 16) - 1


class Parser:
    """Splits a byte stream into Items."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Item]:
        self._buf += data
        items: list[Item] = []
        buf = self._buf
        while buf:
            b = buf[0]
            if b == ord("+"):
                items.append(Item("ack"))
                del buf[0]
            elif b == ord("-"):
                items.append(Item("nak"))
                del buf[0]
            elif b == INTERRUPT:
                items.append(Item("interrupt"))
                del buf[0]
            elif b == ord("$"):
                end = buf.find(b"#")
                if end < 0 or len(buf) < end + 3:
                    break
                data = bytes(buf[1:end])
                try:
                    sent = int(buf[end + 1:end + 3], 16)
                except ValueError:
                    raise RspError(f"bad checksum field {bytes(buf[end + 1:end + 3])!r}") \
                        from None
                del buf[:end + 3]
                if sent != checksum(data):
                    items.append(Item("nak"))  # corrupted: ask again
                    continue
                items.append(Item("packet", unescape(data).decode("latin-1")))
            else:
                del buf[0]  # noise between packets
        return items


class Link:
    """One end of an RSP connection: reads Items, writes packets; acks the
    packets it reads while the connection is in ack mode."""

    def __init__(self, sock: socket.socket, name: str) -> None:
        self.sock = sock
        self.name = name
        self.ack_mode = True
        self._parser = Parser()
        self._pending: list[Item] = []

    def fileno(self) -> int:
        return self.sock.fileno()

    def pending(self) -> bool:
        return bool(self._pending)

    def read(self, timeout: float | None = None) -> Item:
        """The next item (RspError when the peer closed the connection;
        TimeoutError after `timeout` seconds without one)."""
        while not self._pending:
            self.sock.settimeout(timeout)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                raise
            except OSError as exc:
                raise RspError(f"{self.name}: {exc}") from None
            finally:
                self.sock.settimeout(None)
            if not data:
                raise RspError(f"{self.name} closed the connection")
            self._pending += self._parser.feed(data)
        item = self._pending.pop(0)
        if DEBUG:
            print(f"rsp <- {self.name}: {item.kind} {item.data[:200]}", file=sys.stderr)
        if item.kind == "packet" and self.ack_mode:
            self.sock.sendall(b"+")
        return item

    def read_packet(self, timeout: float | None = None) -> str:
        """The next packet, skipping acks."""
        while True:
            item = self.read(timeout)
            if item.kind == "packet":
                return item.data

    def send(self, payload: str) -> None:
        if DEBUG:
            print(f"rsp -> {self.name}: {payload[:200]}", file=sys.stderr)
        self.sock.sendall(frame(payload))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
