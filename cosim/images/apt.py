"""A private apt-get for arm64 packages.

Its configuration, sources list, state (lists, an empty dpkg status), caches and
downloads all live under one directory of the images cache; apt-get reads only
that configuration (APT_CONFIG names it, and it points Dir::Etc::parts and
Dir::Etc::main back at the private directory, so the machine's apt.conf.d is not
read), so the machine's own apt state is never read or written.  The mirror URI
and keyring are the ones the machine's own apt sources name (ci/apt-mirror.sh),
and apt verifies the Release signatures with that keyring as it always does.
It works as root and as any other user."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tqdm import tqdm

from ..config import REPO_ROOT
from .cache import PackageRef
from .errors import AptError, MirrorUnreachable
from .packages import TextIndex
from .progress import bar

ARCH = "arm64"
COMPONENT = "main"
MIRROR_SCRIPT = REPO_ROOT / "ci" / "apt-mirror.sh"
APT_HELPER = "/usr/lib/apt/apt-helper"
OS_RELEASE = Path("/etc/os-release")
PROXY_KEYS = ("Acquire::http::Proxy", "Acquire::https::Proxy", "Acquire::ftp::Proxy")
"""Carried over from the machine's apt configuration (the only settings that are)."""

_UNREACHABLE = re.compile(
    r"Could not resolve|Temporary failure resolving|Unable to connect|Could not connect|"
    r"Connection (refused|timed out|failed)|No route to host|Network is unreachable|"
    r"Could not wait for server fd|Unable to fetch some archives")
_UNSIGNED = re.compile(r"NO_PUBKEY|is not signed|couldn't be verified|EXPKEYSIG|BADSIG|"
                       r"invalid signature")
_STALE = re.compile(r"is expired|is not valid yet|is no longer valid")
_NO_SUITE = re.compile(r"does not have a Release file|404\s+Not Found")


@dataclass(frozen=True)
class Mirror:
    uri: str
    keyring: str | None = None
    """The Signed-By keyring file; None: apt's trusted keys."""

    @classmethod
    def parse(cls, text: str) -> Mirror:
        """'URI [KEYRING]' as ci/apt-mirror.sh prints it ('-' for no keyring)."""
        words = text.split()
        if not words or len(words) > 2 or "://" not in words[0]:
            raise AptError(f"'{text}' is not 'URI [KEYRING]' (e.g. 'http://HOST/debian "
                           "/usr/share/keyrings/debian-archive-keyring.gpg')")
        keyring = words[1] if len(words) == 2 and words[1] != "-" else None
        return cls(words[0].rstrip("/"), keyring)


def machine_codename(os_release: Path = OS_RELEASE) -> str:
    """VERSION_CODENAME of this machine (bookworm, trixie...)."""
    try:
        for line in os_release.read_text().splitlines():
            key, _, value = line.partition("=")
            if key == "VERSION_CODENAME" and value.strip('"'):
                return value.strip('"')
    except OSError as exc:
        raise AptError(f"cannot read {os_release}: {exc.strerror}") from None
    raise AptError(f"{os_release} names no VERSION_CODENAME: is this Debian?")


def machine_mirror(codename: str) -> Mirror:
    """The mirror and keyring the machine's apt sources use for CODENAME."""
    try:
        out = subprocess.run([str(MIRROR_SCRIPT), codename], capture_output=True, text=True,
                             check=False)
    except OSError as exc:
        raise AptError(f"cannot run {MIRROR_SCRIPT}: {exc.strerror}") from None
    if out.returncode != 0 or not out.stdout.strip():
        raise AptError(f"no apt source in /etc/apt names '{codename}': cannot tell which "
                       "Debian mirror to use (give --mirror 'URI [KEYRING]')")
    return Mirror.parse(out.stdout.strip())


def machine_proxies() -> dict[str, str]:
    """The proxy settings of the machine's apt configuration, if any."""
    try:
        out = subprocess.run(["apt-config", "dump", *PROXY_KEYS], capture_output=True,
                             text=True, check=False, env=_c_locale())
    except OSError:
        return {}
    found = {}
    for line in out.stdout.splitlines():
        m = re.match(r'^(\S+) "(.*)";$', line)
        if m and m.group(1) in PROXY_KEYS and m.group(2):
            found[m.group(1)] = m.group(2)
    return found


def _c_locale() -> dict[str, str]:
    return {**os.environ, "LC_ALL": "C", "LANGUAGE": ""}


def _quote(value: str) -> str:
    if '"' in value or "\n" in value:
        raise AptError(f"cannot write {value!r} into an apt configuration")
    return f'"{value}"'


class PrivateApt:
    """apt-get and apt-cache over a private configuration rooted at ROOT."""

    def __init__(self, root: Path, mirror: Mirror, suites: Sequence[str],
                 proxies: Mapping[str, str] | None = None) -> None:
        self.root = root
        self.mirror = mirror
        self.suites = tuple(dict.fromkeys(suites))
        self.proxies = dict(proxies or {})
        self.conf = root / "apt.conf"
        self.sources = root / "sources.list"
        self.state = root / "state"
        self.lists = self.state / "lists"
        self.status = self.state / "status"
        self.cache = root / "cache"
        self.downloads = root / "downloads"
        self.log = root / "log" / "apt.log"

    # -- configuration -------------------------------------------------------------------------

    def directories(self) -> dict[str, Path]:
        """apt's directory options and where they point (all under root)."""
        r = self.root
        return {
            "Dir::Etc::main": self.conf,
            "Dir::Etc::parts": r / "apt.conf.d",
            "Dir::Etc::sourcelist": self.sources,
            "Dir::Etc::sourceparts": r / "sources.list.d",
            "Dir::Etc::preferences": r / "preferences",
            "Dir::Etc::preferencesparts": r / "preferences.d",
            "Dir::State": self.state,
            "Dir::State::lists": self.lists,
            "Dir::State::status": self.status,
            "Dir::State::extended_states": self.state / "extended_states",
            "Dir::Cache": self.cache,
            "Dir::Cache::archives": self.cache / "archives",
            "Dir::Log": self.log.parent,
        }

    def config_text(self) -> str:
        lines = ["// cca-cosim's private apt configuration (cosim/images/apt.py), read through",
                 "// APT_CONFIG: nothing of the machine's apt configuration or state is used.",
                 *(f"{k} {_quote(str(v))};" for k, v in self.directories().items()),
                 "// No binary caches (70 MB): apt builds them in memory when needed.",
                 'Dir::Cache::pkgcache "";',
                 'Dir::Cache::srcpkgcache "";',
                 f'APT::Architecture "{ARCH}";',
                 f'APT::Architectures {{ "{ARCH}"; }};',
                 'Acquire::Languages "none";',
                 'Acquire::GzipIndexes "true";',
                 "// Signatures are checked as always; never allow an unsigned repository.",
                 'Acquire::AllowInsecureRepositories "false";',
                 'Acquire::AllowDowngradeToInsecureRepositories "false";',
                 'APT::Get::AllowUnauthenticated "false";']
        if os.geteuid() == 0:
            # apt drops to _apt for downloads, which cannot enter a cache under /root;
            # it would fall back to root with a warning.
            lines.append('APT::Sandbox::User "root";')
        lines += [f"{k} {_quote(v)};" for k, v in sorted(self.proxies.items())]
        return "\n".join(lines) + "\n"

    def sources_text(self) -> str:
        options = f"arch={ARCH}"
        if self.mirror.keyring:
            options += f" signed-by={self.mirror.keyring}"
        lines = ["# cca-cosim's private apt sources (cosim/images/apt.py)"]
        lines += [f"deb [{options}] {self.mirror.uri} {s} {COMPONENT}" for s in self.suites]
        return "\n".join(lines) + "\n"

    def prepare(self) -> None:
        """Create the directories and write the configuration (idempotent)."""
        for d in ("apt.conf.d", "sources.list.d", "preferences.d", "state/lists/partial",
                  "cache/archives/partial", "downloads", "log"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        self.status.touch()
        self.conf.write_text(self.config_text())
        self.sources.write_text(self.sources_text())

    def env(self) -> dict[str, str]:
        return {**_c_locale(), "APT_CONFIG": str(self.conf), "DEBIAN_FRONTEND": "noninteractive"}

    # -- running apt ---------------------------------------------------------------------------

    def run(self, tool: str, args: Sequence[str], desc: str = "", total: int = 0,
            cwd: Path | None = None) -> str:
        """Run apt-get/apt-helper; returns stdout (stderr goes to the log); raises AptError on
        failure.  With DESC, a progress bar: over TOTAL bytes arriving in CWD when TOTAL is
        given (apt-get download reports progress only per finished file), else over the
        percentages of apt's Status-Fd (apt-get update)."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        use_status = bool(desc) and not total
        status_r, status_w = os.pipe() if use_status else (-1, -1)
        cmd = [tool, *(["-o", f"APT::Status-Fd={status_w}"] if use_status else []), *args]
        progress = (bar(desc, total) if total else bar(desc, 100, unit="%")) if desc else None
        follower = None
        try:
            with self.log.open("a") as log:
                log.write(f"$ APT_CONFIG={self.conf} {' '.join(cmd)}\n")
                log.flush()
                proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True,
                                        env=self.env(), cwd=cwd,
                                        pass_fds=(status_w,) if use_status else ())
                if progress is not None and use_status:
                    os.close(status_w)
                    status_w = -1
                    status = os.fdopen(status_r, errors="replace")
                    status_r = -1
                    follower = threading.Thread(target=_follow_status, args=(status, progress),
                                                daemon=True)
                elif progress is not None and cwd is not None:
                    follower = threading.Thread(target=_follow_directory,
                                                args=(cwd, proc, progress), daemon=True)
                if follower is not None:
                    follower.start()
                out, _ = proc.communicate()
                if follower is not None:
                    follower.join()
                if desc:
                    log.write(out)
        except OSError as exc:
            raise AptError(f"cannot run {tool}: {exc.strerror}") from None
        finally:
            if progress is not None:
                progress.close()
            for fd in (status_r, status_w):
                if fd >= 0:
                    os.close(fd)
        messages = self._messages_of_last_run()
        if proc.returncode != 0 or any(m.startswith("E:") for m in messages):
            raise self._error(tool, args, messages)
        return out

    def _messages_of_last_run(self) -> list[str]:
        text = self.log.read_text(errors="replace")
        last = text[text.rfind("\n$ APT_CONFIG=") + 1:]
        return [ln for ln in last.splitlines() if ln[:2] in ("E:", "W:")]

    def _error(self, tool: str, args: Sequence[str], messages: list[str]) -> AptError:
        errors = [m for m in messages if m.startswith("E:")] or messages
        first = errors[0][3:] if errors else f"{tool} {' '.join(args)} failed"
        every = " ".join(messages)
        where = f"(full log: {self.log})"
        if _UNSIGNED.search(every):
            key = self.mirror.keyring or "apt's trusted keys"
            return AptError(f"apt could not verify the signature of {self.mirror.uri} with "
                            f"{key}: {first} {where}")
        if _STALE.search(every):
            return AptError(f"a Release file of {self.mirror.uri} is out of date (a stale "
                            f"mirror, or a wrong clock): {first} {where}")
        if _NO_SUITE.search(every) and not _UNREACHABLE.search(every):
            return AptError(f"the mirror {self.mirror.uri} lacks a suite: {first} {where}")
        if _UNREACHABLE.search(every):
            return MirrorUnreachable(f"the mirror {self.mirror.uri} is unreachable: "
                                     f"{first} {where}")
        return AptError(f"{tool} {' '.join(args)}: {first} {where}")

    # -- what the callers use ------------------------------------------------------------------

    def update(self) -> None:
        """apt-get update of the private lists; failing to fetch any index is an error."""
        self.prepare()
        self.run("apt-get", ["update"], desc=f"apt update ({', '.join(self.suites)})")
        warnings = [m for m in self._messages_of_last_run() if "Failed to fetch" in m
                    or "Some index files failed" in m]
        if warnings:
            raise self._error("apt-get", ["update"], warnings)

    def index(self, suite: str, keep: Callable[[str], bool]) -> TextIndex:
        """The stanzas of SUITE's package index (after update) whose package name KEEP
        accepts (the others are not parsed)."""
        out = self.run("apt-get", ["indextargets", "--format", "$(FILENAME)",
                                   "Identifier: Packages", f"Release: {suite}"])
        files = out.split()
        if not files:
            raise AptError(f"no package index of {suite} in {self.lists}")
        text = "\n\n".join(self.run(APT_HELPER, ["cat-file", f]) for f in files)
        return TextIndex(suite, text, keep)

    def download(self, refs: Sequence[PackageRef], desc: str = "download") -> dict[str, Path]:
        """apt-get download of REFS into the downloads directory (signature-checked through
        the lists); returns name -> .deb path."""
        self.prepare()
        total = sum(r.size for r in refs)
        self.run("apt-get", ["download", *(f"{r.name}={r.version}" for r in refs)],
                 desc=desc, total=total, cwd=self.downloads)
        found: dict[str, Path] = {}
        for r in refs:
            for path in self.downloads.glob(f"{r.name}_*.deb"):
                if path.name.split("_")[1].replace("%3a", ":") == r.version:
                    found[r.name] = path
            if r.name not in found:
                raise AptError(f"apt-get download left no .deb for {r.name} {r.version} "
                               f"in {self.downloads}")
        return found

    def clean_downloads(self) -> None:
        for path in self.downloads.glob("*.deb"):
            path.unlink()


def _follow_status(status: IO[str], progress: tqdm) -> None:
    """Feed apt's Status-Fd lines (dlstatus:N:PERCENT:TEXT) to a progress bar."""
    with status:
        for line in status:
            parts = line.split(":", 3)
            if parts[0] == "dlstatus" and len(parts) == 4:
                try:
                    done = float(parts[2]) / 100 * progress.total
                except ValueError:
                    continue
                progress.update(max(0.0, done - progress.n))


def _follow_directory(directory: Path, proc: subprocess.Popen[str], progress: tqdm) -> None:
    """Feed the bytes of the files growing in DIRECTORY to a progress bar until PROC ends."""
    def size() -> int:
        return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())

    start = size()
    while True:
        done = proc.poll() is not None
        try:
            progress.update(max(0, size() - start - progress.n))
        except OSError:   # a partial file renamed while we looked
            pass
        if done:
            return
        time.sleep(0.2)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()

