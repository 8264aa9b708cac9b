"""An Arm PrimeCell UART (PL011, Arm DDI 0183) as the realm's console.

Transmission is instantaneous (the FIFO is never full, TXRIS always set);
received bytes wait in a FIFO of the PL011's depth and raise RXRIS/RTRIS
while it is not empty.  The interrupt line (RIS & IMSC) drives the UART's
SPI through a callback."""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable

from ...monitor.layout import ConsoleFlag

UARTDR = 0x000
UARTRSR = 0x004
UARTFR = 0x018
UARTILPR = 0x020
UARTIBRD = 0x024
UARTFBRD = 0x028
UARTLCR_H = 0x02C
UARTCR = 0x030
UARTIFLS = 0x034
UARTIMSC = 0x038
UARTRIS = 0x03C
UARTMIS = 0x040
UARTICR = 0x044
UARTDMACR = 0x048
PERIPH_ID_BASE = 0xFE0
PERIPH_ID = (0x11, 0x10, 0x14, 0x00, 0x0D, 0xF0, 0x05, 0xB1)
"""UARTPeriphID0-3 then UARTPCellID0-3: a PL011 r1p5 (what amba_read_periphid matches)."""

FR_BUSY = 1 << 3
FR_RXFE = 1 << 4
FR_TXFF = 1 << 5
FR_RXFF = 1 << 6
FR_TXFE = 1 << 7
INT_RX = 1 << 4
INT_TX = 1 << 5
INT_RT = 1 << 6
FIFO_DEPTH = 32
CR_RESET = 0x300
IFLS_RESET = 0x12


class Pl011:
    name = "PL011 UART"

    def __init__(self, output: Callable[[bytes], None],
                 irq: Callable[[bool], None] = lambda level: None) -> None:
        self._output = output
        self._irq = irq
        self._lock = threading.Lock()
        self._rx: collections.deque[int] = collections.deque()
        self._regs = {UARTILPR: 0, UARTIBRD: 0, UARTFBRD: 0, UARTLCR_H: 0, UARTCR: CR_RESET,
                      UARTIFLS: IFLS_RESET, UARTIMSC: 0, UARTDMACR: 0}
        self._level = False
        self.tx_bytes = 0

    # -- the host side ----------------------------------------------------------------------

    def _room(self) -> int:
        # Input waits until the guest's driver unmasks a receive interrupt:
        # before that nothing reads the FIFO.  Not enough on its own: Linux's
        # pl011 driver unmasks RX once (pl011_hwinit) and then still empties
        # the FIFO before its final UARTIMSC write, so input that comes in
        # between is lost; RealmConsole.hold_input_until covers our initramfs.
        if not self._regs[UARTIMSC] & (INT_RX | INT_RT):
            return 0
        return FIFO_DEPTH - len(self._rx)

    def feed(self, data: bytes) -> int:
        """Input from the user's terminal; returns how many bytes the FIFO took
        (none while the guest has not unmasked its receive interrupts)."""
        with self._lock:
            room = self._room()
            self._rx.extend(data[:room])
            taken = min(room, len(data))
            level = self._update()
        self._irq(level)
        return taken

    @property
    def rx_room(self) -> int:
        with self._lock:
            return self._room()

    # -- the console fast path (the hoststub completes these accesses) -------------------------

    def fast_path(self) -> tuple[int, int, int]:
        """(ConsoleFlag bits, FR, CR) for the hoststub: DR writes always (they
        change no state but the output), CR reads and same-value writes, and
        FR reads while the receive FIFO is empty (FR is then constant; input
        that arrives meanwhile raises the UART's interrupt, which ends the
        stub's loop)."""
        with self._lock:
            flags = ConsoleFlag.DR_WRITE | ConsoleFlag.CR_ACCESS
            if not self._rx:
                flags |= ConsoleFlag.FR_READ
            return flags, FR_TXFE | FR_RXFE, self._regs[UARTCR]

    def transmitted(self, data: bytes) -> None:
        """Bytes the realm wrote to UARTDR through the fast path."""
        self.tx_bytes += len(data)
        self._output(data)

    # -- registers -----------------------------------------------------------------------------

    def _ris(self) -> int:
        return INT_TX | ((INT_RX | INT_RT) if self._rx else 0)

    def _update(self) -> bool:
        self._level = bool(self._ris() & self._regs[UARTIMSC])
        return self._level

    def read(self, offset: int, size: int, cpu: int) -> int:
        with self._lock:
            if offset == UARTDR:
                value = self._rx.popleft() if self._rx else 0
                level = self._update()
            elif offset == UARTFR:
                fr = FR_TXFE | (FR_RXFE if not self._rx else 0)
                return fr | (FR_RXFF if len(self._rx) >= FIFO_DEPTH else 0)
            elif offset == UARTRIS:
                return self._ris()
            elif offset == UARTMIS:
                return self._ris() & self._regs[UARTIMSC]
            elif offset in self._regs:
                return self._regs[offset]
            elif PERIPH_ID_BASE <= offset < PERIPH_ID_BASE + 4 * len(PERIPH_ID) \
                    and offset % 4 == 0:
                return PERIPH_ID[(offset - PERIPH_ID_BASE) // 4]
            else:
                return 0
        self._irq(level)
        return value

    def write(self, offset: int, size: int, value: int, cpu: int) -> None:
        if offset == UARTDR:
            self.tx_bytes += 1
            self._output(bytes((value & 0xFF,)))
            return
        with self._lock:
            if offset in self._regs:
                self._regs[offset] = value & 0xFFFF
            # UARTICR: RX/RT follow the FIFO and TX is always set, so clearing
            # them changes nothing (an instantaneous transmitter).
            level = self._update()
        self._irq(level)
