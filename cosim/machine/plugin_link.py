"""The Python end of the TCG plugin's sockets.

The plugin opens one control connection when it loads (used only so that
each side notices when the other goes away) and one connection per vCPU the
first time that vCPU rings the doorbell.  Every connection carries fixed-size
requests (plugin_protocol.REQUEST) answered by fixed-size replies
(plugin_protocol.REPLY).  Each connection is served by its own thread, so a
vCPU blocked in a doorbell never delays another.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import traceback
from collections.abc import Callable
from typing import Protocol

from . import plugin_protocol as P

_OK_UNCHANGED = P.REPLY.pack(P.PLUGIN_MAGIC, P.PluginReply.OK, P.PLUGIN_WORLD_UNCHANGED, 0)
_MAGIC = P.PLUGIN_MAGIC
_DOORBELL = int(P.PluginMsg.DOORBELL)
_UNCHANGED = P.PLUGIN_WORLD_UNCHANGED
"""Hot-loop constants (a doorbell per SMC): plain ints, no attribute lookups."""


class PluginHandler(Protocol):
    """What the machine's owner supplies to answer the plugin."""

    def on_doorbell(self, vcpu: int) -> int:
        """The monitor on `vcpu` rang the doorbell.  Return the vCPU's new world
        or PLUGIN_WORLD_UNCHANGED."""

    def on_attack(self, vcpu: int, pc: int, el: int) -> None:
        """Code below EL3 executed the doorbell encoding."""

    def on_violation(self, vcpu: int, pc: int, pa: int, va: int, info: int, value: int) -> int:
        """A plugin GPT check failed; return a PluginReply."""

    def on_held(self, vcpu: int, pc: int, offender: int) -> None:
        """The plugin holds `vcpu` at `pc` after a STOP reply; return to release it."""


class PluginLink:
    """Listens on an abstract Unix socket and serves the plugin's connections."""

    def __init__(self, name: str, handler: PluginHandler,
                 on_error: Callable[[BaseException, str], None]) -> None:
        self.name = name
        self._handler = handler
        self._on_error = on_error
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        self._server.bind("\0" + name)
        self._server.listen(16)
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._closing = False
        self.control_connected = threading.Event()
        self.control_closed = threading.Event()
        self.vcpus_seen: set[int] = set()
        self._acceptor = threading.Thread(target=self._accept_loop, name="plugin-accept",
                                          daemon=True)
        self._acceptor.start()

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                if self._closing:
                    conn.close()
                    return
                self._conns.append(conn)
                t = threading.Thread(target=self._serve, args=(conn,), name="plugin-conn",
                                     daemon=True)
                self._threads.append(t)
            t.start()

    def _serve(self, conn: socket.socket) -> None:
        size = P.REQUEST.size
        buf = bytearray(size)
        view = memoryview(buf)
        unpack = P.REQUEST.unpack_from
        recv_into, sendall = conn.recv_into, conn.sendall
        on_doorbell = self._handler.on_doorbell
        vcpu = -1
        try:
            while True:
                got = recv_into(view, size, socket.MSG_WAITALL)
                if got != size:
                    break
                magic, kind, vcpu, pc, a0, a1, a2, a3 = unpack(buf)
                if magic != _MAGIC:
                    raise ValueError(f"plugin sent a message with bad magic {magic:#x}")
                if kind == _DOORBELL:
                    world = on_doorbell(vcpu)
                    if world == _UNCHANGED:
                        sendall(_OK_UNCHANGED)
                    else:
                        conn.sendall(P.REPLY.pack(P.PLUGIN_MAGIC, P.PluginReply.OK, world, 0))
                elif kind == P.PluginMsg.HELLO:
                    self._hello(vcpu, a0)
                    conn.sendall(_OK_UNCHANGED)
                elif kind == P.PluginMsg.ATTACK:
                    self._handler.on_attack(vcpu, pc, a0)
                    conn.sendall(_OK_UNCHANGED)
                elif kind == P.PluginMsg.HELD:
                    self._handler.on_held(vcpu, pc, a0)
                    conn.sendall(_OK_UNCHANGED)
                elif kind == P.PluginMsg.VIOLATION:
                    reply = self._handler.on_violation(vcpu, pc, a0, a1, a2, a3)
                    conn.sendall(P.REPLY.pack(P.PLUGIN_MAGIC, reply, P.PLUGIN_WORLD_UNCHANGED, 0))
                else:
                    raise ValueError(f"plugin sent unknown message type {kind}")
        except OSError:
            pass
        except BaseException as exc:
            if not self._closing:
                self._on_error(exc, traceback.format_exc())
        finally:
            if vcpu == P.PLUGIN_CONTROL_VCPU:
                self.control_closed.set()

    def _hello(self, vcpu: int, version: int) -> None:
        if version != P.PLUGIN_PROTOCOL_VERSION:
            raise ValueError(f"plugin speaks protocol {version}, this cosim speaks "
                             f"{P.PLUGIN_PROTOCOL_VERSION}: rebuild qemu_plugin/")
        if vcpu == P.PLUGIN_CONTROL_VCPU:
            self.control_connected.set()
        else:
            self.vcpus_seen.add(vcpu)

    def close(self) -> None:
        """Close every connection (the plugin, if still there, makes QEMU exit)."""
        with self._lock:
            self._closing = True
            conns = list(self._conns)
            threads = list(self._threads)
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            c.close()
        for t in threads:
            t.join(timeout=2)
        self._acceptor.join(timeout=2)


def unique_name(what: str) -> str:
    """An abstract socket name unique to this process and call."""
    return f"cca-cosim-{os.getpid()}-{os.urandom(4).hex()}-{what}"
