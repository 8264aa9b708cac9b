"""cca-cosim's GDB extension: `source` it in gdb-multiarch (the session
script cosim writes does).  It defines the `cca` command, which asks the
co-simulator over the remote connection (as `monitor cca ...`, answered by
cosim's gdb proxy in JSON) and prints the answer:

    cca realms | recs [REALM] | granule ADDR | rtt REALM IPA | trace [N]
    cca world | ipa [VA] | break [EVENT] | delete [N|all] | last | help

ADDR and IPA are gdb expressions ($x1, $pc + 8, 0x80001000).  A mistake is
one line of error and gdb carries on.  After a stop on a CCA event, the
event is printed.

This file runs inside gdb's own Python: it imports only `gdb` and the
standard library, never `cosim`.
"""

import json

import gdb  # type: ignore[import-not-found]

_EXPRESSION_ARGS = {"granule": (0,), "rtt": (1,), "ipa": (0,)}


def _evaluate(text):
    try:
        value = gdb.parse_and_eval(text)
    except gdb.error as exc:
        raise gdb.GdbError(f"cca: cannot evaluate '{text}': {exc}") from None
    try:
        return hex(int(value) & 0xFFFF_FFFF_FFFF_FFFF)
    except (gdb.error, ValueError, TypeError):
        raise gdb.GdbError(f"cca: '{text}' is not a number") from None


def _split(arg):
    return gdb.string_to_argv(arg)


def ask(text):
    """The co-simulator's JSON answer to `text` (a dict)."""
    if gdb.selected_inferior().pid == 0:
        raise gdb.GdbError("cca: not connected to the co-simulator (target remote first)")
    try:
        raw = gdb.execute(f"monitor cca {text}", to_string=True)
    except gdb.error as exc:
        raise gdb.GdbError(f"cca: the co-simulator did not answer: {exc}") from None
    try:
        return json.loads(raw)
    except ValueError:
        raise gdb.GdbError(f"cca: unexpected answer from the target: {raw.strip()!r} "
                           "(is this cosim's gdb port?)") from None


class CcaCommand(gdb.Command):
    """Ask the cca-cosim co-simulator about CCA state: cca help lists the commands."""

    def __init__(self):
        super().__init__("cca", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        words = _split(arg)
        if words and words[0] in _EXPRESSION_ARGS:
            for i in _EXPRESSION_ARGS[words[0]]:
                if len(words) > i + 1:
                    words[i + 1] = _evaluate(words[i + 1])
        if words and words[0] == "ipa":
            if len(words) == 1:
                words.append(_evaluate("$pc"))
            words.append(str(gdb.selected_thread().num - 1))  # thread n is vCPU n-1
        reply = ask(" ".join(words))
        if not reply.get("ok"):
            raise gdb.GdbError(f"cca: {reply.get('error', 'failed')}")
        gdb.write(reply.get("text", "") + "\n")


def _on_stop(event):
    # A CCA event stop is reported as a SIGTRAP with no breakpoint of gdb's
    # (gdb 13 gives a plain StopEvent for it): ask which event it was.
    if isinstance(event, gdb.BreakpointEvent):
        return
    if isinstance(event, gdb.SignalEvent) and event.stop_signal != "SIGTRAP":
        return
    try:
        reply = ask("last")
    except gdb.GdbError:
        return
    if reply.get("ok") and reply.get("text"):
        gdb.write(reply["text"] + "\n")


CcaCommand()
gdb.events.stop.connect(_on_stop)
