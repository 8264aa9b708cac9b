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
        """Write every future event to `stream` as one JSON line."""
        lock = threading.Lock()

        def sink(event: Event) -> None:
            line = _jsonl(event)
            with lock:
                stream.write(line)
                stream.flush()

        self._files.append(stream)
        self.subscribe(sink)

    def dump(self, stream: IO[str]) -> int:
        """Write the retained events to `stream` as JSON lines; returns how many."""
        events = self.history()
        stream.writelines(_jsonl(e) for e in events)
        return len(events)

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


def _jsonl(event: Event) -> str:
    return json.dumps(event, separators=(",", ":"), default=str) + "\n"


def read_jsonl(lines: Iterable[str]) -> Iterator[Event]:
    """Parse a JSON-lines trace file, skipping blank lines."""
    for line in lines:
        line = line.strip()
        if line:
            yield json.loads(line)

