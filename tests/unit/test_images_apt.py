"""The private apt configuration: what it names, what apt reads from it, and how its
failures are reported.  No network."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from cosim.images.apt import Mirror, PrivateApt, machine_codename
from cosim.images.errors import AptError, MirrorUnreachable

MIRROR = Mirror("http://mirror.example/debian", "/usr/share/keyrings/debian-archive-keyring.gpg")
LITERALS = {"arm64", "none", "false", "true", "root", ""}


@pytest.fixture
def apt(tmp_path: Path) -> PrivateApt:
    a = PrivateApt(tmp_path / "apt", MIRROR, ["trixie-backports", "bookworm", "bookworm"],
                   proxies={"Acquire::http::Proxy": "http://proxy.example:3128"})
    a.prepare()
    return a


def test_config_names_only_the_cache_dirs(apt: PrivateApt) -> None:
    text = apt.conf.read_text()
    for key, value in re.findall(r'^(\S+) "([^"]*)";$', text, re.MULTILINE):
        if key.startswith("Dir"):
            assert value == "" or Path(value).is_relative_to(apt.root), (key, value)
        elif key != "Acquire::http::Proxy":
            assert value in LITERALS, (key, value)
    assert 'APT::Architecture "arm64";' in text
    assert 'APT::Architectures { "arm64"; };' in text
    assert 'Acquire::AllowInsecureRepositories "false";' in text
    assert 'APT::Get::AllowUnauthenticated "false";' in text
    assert 'Acquire::http::Proxy "http://proxy.example:3128";' in text
    for option in ("Dir::Etc::main", "Dir::Etc::parts", "Dir::Etc::sourcelist",
                   "Dir::Etc::sourceparts", "Dir::State::lists", "Dir::State::status",
                   "Dir::Cache::archives", "Dir::Log"):
        assert f"{option} " in text, option


def test_sources_name_the_mirror_and_its_keyring(apt: PrivateApt) -> None:
    lines = [ln for ln in apt.sources.read_text().splitlines() if not ln.startswith("#")]
    assert lines == [
        f"deb [arch=arm64 signed-by={MIRROR.keyring}] {MIRROR.uri} trixie-backports main",
        f"deb [arch=arm64 signed-by={MIRROR.keyring}] {MIRROR.uri} bookworm main",
    ]
    assert "trusted" not in apt.sources.read_text()
    assert "insecure" not in apt.sources.read_text().lower()


def test_state_is_private_and_empty(apt: PrivateApt) -> None:
    assert apt.status.is_file() and apt.status.stat().st_size == 0
    assert (apt.lists / "partial").is_dir()
    assert all(p.is_relative_to(apt.root) for p in apt.directories().values())


def test_apt_reads_only_the_private_configuration(apt: PrivateApt) -> None:
    """apt-config, as apt-get would see it: our directories, nothing from /etc/apt."""
    out = subprocess.run(["apt-config", "dump"], capture_output=True, text=True,
                         env=apt.env(), check=True).stdout
    values = dict(re.findall(r'^(\S+) "([^"]*)";$', out, re.MULTILINE))
    assert values["Dir::State::lists"].rstrip("/") == str(apt.lists)
    assert values["Dir::State::status"] == str(apt.status)
    assert values["Dir::Etc::sourcelist"] == str(apt.sources)
    assert values["Dir::Etc::parts"].rstrip("/") == str(apt.root / "apt.conf.d")
    assert values["APT::Architecture"] == "arm64"
    # Settings of /etc/apt/apt.conf.d files (appstream's DEP-11 targets, docker's
    # clean hooks...) are not apt's defaults: none may leak in.
    machine_only = [k for k in values if "DEP-11" in k or "Contents-deb" in k
                    or k.startswith(("APT::Periodic", "DPkg::Post-Invoke", "APT::Update::Post"))]
    assert machine_only == []


def test_mirror_parse() -> None:
    assert Mirror.parse("http://h/debian/ /k.gpg") == Mirror("http://h/debian", "/k.gpg")
    assert Mirror.parse("http://h/debian -") == Mirror("http://h/debian", None)
    with pytest.raises(AptError, match="is not 'URI"):
        Mirror.parse("not-a-uri")


def test_machine_codename(tmp_path: Path) -> None:
    f = tmp_path / "os-release"
    f.write_text('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_CODENAME=bookworm\n')
    assert machine_codename(f) == "bookworm"
    f.write_text("ID=debian\n")
    with pytest.raises(AptError, match="names no VERSION_CODENAME"):
        machine_codename(f)


@pytest.mark.parametrize("messages, kind, text", [
    (["W: Failed to fetch http://m/dists/x/InRelease  Could not resolve 'm'",
      "E: Some index files failed to download."], MirrorUnreachable, "is unreachable"),
    (["W: GPG error: http://m x InRelease: NO_PUBKEY 6ED0E7B82643E131",
      "E: The repository 'http://m x InRelease' is not signed."], AptError,
     "could not verify the signature"),
    (["E: The repository 'http://m nosuch Release' does not have a Release file."], AptError,
     "lacks a suite"),
    (["E: Release file for http://m/dists/sid/InRelease is expired (invalid since 20d). "
      "Updates for this repository will not be applied."], AptError, "is out of date"),
    (["E: Can't find a source to download version '1' of 'x:arm64'"], AptError,
     "Can't find a source"),
])
def test_errors_are_classified(apt: PrivateApt, messages: list[str], kind: type,
                               text: str) -> None:
    err = apt._error("apt-get", ["update"], messages)
    assert type(err) is kind
    assert text in str(err) and "\n" not in str(err)
