"""Reading .deb files with dpkg-deb: their control fields and selected files."""

from __future__ import annotations

import subprocess
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from .errors import ImagesError
from .progress import bar


@dataclass(frozen=True)
class DebInfo:
    path: Path
    name: str
    version: str
    architecture: str
    installed_size: int
    """Bytes (dpkg's Installed-Size is in KiB)."""


def deb_info(path: Path) -> DebInfo:
    """The control fields of the .deb at PATH; a one-line error if it is not one."""
    if not path.is_file():
        raise ImagesError(f"{path}: no such file")
    out = subprocess.run(["dpkg-deb", "-f", str(path), "Package", "Version", "Architecture",
                          "Installed-Size"], capture_output=True, text=True, check=False)
    fields = dict(line.split(": ", 1) for line in out.stdout.splitlines() if ": " in line)
    if out.returncode != 0 or "Package" not in fields:
        reason = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "no control fields"
        raise ImagesError(f"{path} is not a Debian package ({reason})")
    return DebInfo(path, fields["Package"], fields.get("Version", "?"),
                   fields.get("Architecture", "?"), int(fields.get("Installed-Size", "0")) * 1024)


class _Counting:
    """A read-only stream that reports the bytes read to a progress bar."""

    def __init__(self, stream: IO[bytes], on_read: Callable[[int], object]) -> None:
        self.stream = stream
        self.on_read = on_read

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.on_read(len(data))
        return data


def member_path(name: str) -> PurePosixPath | None:
    """A tar member name as a relative path ('./usr/x' -> 'usr/x'); None if it escapes."""
    path = PurePosixPath(name.lstrip("/"))
    parts = [p for p in path.parts if p != "."]
    if not parts or ".." in parts:
        return None
    return PurePosixPath(*parts)


def read_files(deb: DebInfo, wanted: Callable[[PurePosixPath], bool]
               ) -> dict[PurePosixPath, bytes]:
    """The regular files of DEB whose relative path WANTED accepts, read into memory from
    `dpkg-deb --fsys-tarfile` in one pass (with a progress bar)."""
    found: dict[PurePosixPath, bytes] = {}
    progress = bar(f"extract {deb.name}", deb.installed_size or None)
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb.path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    try:
        stream = _Counting(proc.stdout, progress.update)
        with tarfile.open(fileobj=stream, mode="r|") as tar:  # type: ignore[call-overload]
            for member in tar:
                rel = member_path(member.name)
                if rel is None or not member.isfile() or not wanted(rel):
                    continue
                source = tar.extractfile(member)
                assert source is not None
                found[rel] = source.read()
    except tarfile.TarError as exc:
        proc.kill()
        raise ImagesError(f"cannot read the files of {deb.path}: {exc}") from None
    finally:
        progress.close()
        _, err = proc.communicate()
    if proc.returncode != 0:
        raise ImagesError(f"dpkg-deb --fsys-tarfile {deb.path} failed: "
                          f"{err.decode(errors='replace').strip()}")
    return found
