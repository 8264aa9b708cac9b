"""The structured event stream: every RMI/RSI command, exit, world switch and
GPT event is one event, written as JSON lines and kept in a bounded history.

An event is a flat dict: ``{"t": seconds since the trace started, "kind": str,
...fields}``.  Field values are ints, strs, bools, floats, None or lists of
those.  Emitting is cheap when nobody listens: callers on hot paths check
``trace.active`` before building expensive fields.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

Event = dict[str, Any]
Sink = Callable[[Event], None]

DEFAULT_HISTORY = 65536


class Trace:
    """A thread-safe event stream with a bounded in-memory history."""

    def __init__(self, history: int = DEFAULT_HISTORY) -> None:
        self._t0 = time.monotonic()
        self._lock = threading.Lock()
        self._history: deque[Event] = deque(maxlen=history) if history else deque(maxlen=0)
        self._sinks: list[Sink] = []
        self._files: list[IO[str]] = []
        self.active = history > 0
        self.count = 0
        self.write_error: OSError | ValueError | None = None
        """Why writing the trace file failed (it stopped then), e.g. a full disk."""

    # -- producing ------------------------------------------------------------

    def emit(self, kind: str, **fields: Any) -> Event | None:
        if not self.active:
            return None
        event: Event = {"t": round(time.monotonic() - self._t0, 6), "kind": kind, **fields}
        with self._lock:
            self.count += 1
            self._history.append(event)
            sinks = list(self._sinks)
        for sink in sinks:
            sink(event)
        return event

    # -- consuming ------------------------------------------------------------

    def subscribe(self, sink: Sink) -> Callable[[], None]:
        """Call `sink` for every future event; returns an unsubscribe function."""
        with self._lock:
            self._sinks.append(sink)
            self.active = True

        def unsubscribe() -> None:
            with self._lock:
                if sink in self._sinks:
                    self._sinks.remove(sink)

        return unsubscribe

    def write_to(self, stream: IO[str]) -> None:
        """Write every future event to `stream` as one JSON line.  If a write
        fails, writing stops and `write_error` says why (the run goes on)."""
        lock = threading.Lock()

        def sink(event: Event) -> None:
            line = json.dumps(event, separators=(",", ":"), default=str)
            with lock:
                if self.write_error is not None:
                    return
                try:
                    stream.write(line + "\n")
                    stream.flush()
                except (OSError, ValueError) as exc:
                    self.write_error = exc

        self._files.append(stream)
        self.subscribe(sink)

    def close(self) -> None:
        """Close the files given to write_to (a write error is kept in write_error)."""
        files, self._files = self._files, []
        for f in files:
            try:
                f.close()
            except (OSError, ValueError) as exc:
                if self.write_error is None:
                    self.write_error = exc

    def history(self, kind: str | None = None) -> list[Event]:
        """The retained events, oldest first, optionally only those of `kind`."""
        with self._lock:
            events = list(self._history)
        if kind is None:
            return events
        return [e for e in events if e["kind"] == kind]

    def find(self, predicate: Callable[[Event], bool], *, last: int | None = None) -> list[Event]:
        """Retained events matching `predicate`, oldest first (at most the `last` ones)."""
        found = [e for e in self.history() if predicate(e)]
        return found[-last:] if last else found


class TraceFormatError(ValueError):
    """A line of a trace file that is not a JSON object."""

    def __init__(self, line: int, problem: str) -> None:
        self.line = line
        super().__init__(f"line {line} {problem}")


def read_jsonl(lines: Iterable[str | bytes],
               on_cut: Callable[[int], None] | None = None) -> Iterator[Event]:
    """Parse a JSON-lines trace (a file opened in binary or text mode, or a
    list of lines) one event at a time, skipping blank lines.

    A run that dies mid-write leaves its last line cut short: when the last
    line lacks its newline and does not parse, and events came before it,
    `on_cut(its line number)` is called and the line skipped.  Any other line
    that is not a JSON object raises TraceFormatError with its number."""
    it = iter(lines)
    ahead = next(it, None)
    number = 0
    events = 0
    while ahead is not None:
        raw, ahead = ahead, next(it, None)
        number += 1
        last_cut = ahead is None and events > 0 and \
            not (raw.endswith(b"\n") if isinstance(raw, bytes) else raw.endswith("\n"))
        try:
            text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
            if not text.strip():
                continue
            event = json.loads(text)
        except ValueError as exc:  # UnicodeDecodeError, json.JSONDecodeError
            if last_cut:
                if on_cut is not None:
                    on_cut(number)
                break
            if isinstance(exc, UnicodeDecodeError):
                raise TraceFormatError(number, "is not UTF-8 text (is this a trace?)") \
                    from None
            assert isinstance(exc, json.JSONDecodeError)
            raise TraceFormatError(number, f"is not JSON ({exc.msg}, column {exc.colno})") \
                from None
        if not isinstance(event, dict):
            raise TraceFormatError(number, f"is a JSON {type(event).__name__}, not an object "
                                           "(one event per line)")
        events += 1
        yield event

