"""Issue 11: the Docker image, built and run with a real engine through
ci/docker-check.sh (base image created when missing, image built, the whole
suite run inside it offline), and audited for the builder's registry settings."""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TAG = "cca-cosim:test"
BASE = "debian:trixie"
# Where the image keeps files a build could leave settings in; /usr holds only
# what packages install (but /usr/local is scanned).
SCANNED = ["/etc", "/opt", "/home", "/root", "/var", "/tmp", "/results", "/usr/local"]


def docker_problem() -> str | None:
    """Why this machine cannot run the Docker tests, or None."""
    if shutil.which("docker") is None:
        return "no docker client on PATH"
    try:
        info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return "'docker info' did not answer within 60 s"
    if info.returncode != 0:
        lines = (info.stderr.strip() or info.stdout.strip() or "no output").splitlines()
        return f"'docker info' failed: {lines[-1]}"
    return None


_problem = docker_problem()
pytestmark = [
    pytest.mark.docker,
    pytest.mark.slow,
    pytest.mark.timeout(3600),
    pytest.mark.skipif(_problem is not None, reason=f"Docker engine not usable: {_problem}"),
]


def docker(*args: str, stdin: str | None = None, check: bool = True) -> str:
    proc = subprocess.run(["docker", *args], input=stdin, capture_output=True, text=True,
                          timeout=600, stdin=None if stdin is not None else subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc.stdout


@pytest.fixture(scope="module")
def checked() -> Iterator[Path]:
    """ci/docker-check.sh end to end; yields its artifact directory, build/docker
    of the checkout (kept: CI's record of the run inside the image)."""
    out = REPO / "build" / "docker"
    proc = subprocess.run([str(REPO / "ci/docker-check.sh"), "--tag", TAG, "--base", BASE,
                           "--out", str(out)], capture_output=True, text=True, timeout=3300,
                          stdin=subprocess.DEVNULL, cwd=REPO)
    output = proc.stdout + proc.stderr
    (out / "check.log").write_text(output)
    assert proc.returncode == 0, f"ci/docker-check.sh failed:\n{output[-4000:]}"
    yield out


def test_the_suite_passes_inside_the_image(checked: Path) -> None:
    summary = dict(line.split("=", 1) for line in (checked / "summary.txt").read_text().split())
    assert summary["suite_rc"] == "0" and summary["image"] == TAG
    suite = ET.parse(checked / "results/junit.xml").getroot().find("testsuite")
    assert suite is not None
    counts = {k: int(suite.get(k, "0")) for k in ("tests", "failures", "errors", "skipped")}
    assert counts["failures"] == counts["errors"] == 0, counts
    assert counts["tests"] - counts["skipped"] > 500, counts
    # The realm images are baked in: the boot tests ran inside, offline.
    boots = [c for c in suite.iter("testcase") if c.get("classname", "").endswith("test_images")
             and c.get("name", "").startswith("test_boot")]
    assert boots and all(c.find("skipped") is None for c in boots), "realm images missing"
    # Inside the container there is no engine: this file is skipped there, saying why.
    skipped = [c for c in suite.iter("testcase") if c.get("classname", "").endswith("test_docker")]
    assert skipped and all(c.find("skipped") is not None for c in skipped)
    assert "Docker engine not usable" in skipped[0].find("skipped").get("message", "")


def test_cosim_runs_as_a_non_root_user_without_network(checked: Path) -> None:
    out = docker("run", "--rm", "--network", "none", TAG, "sh", "-c", "id -u; cosim demo")
    uid, _, demo = out.partition("\n")
    assert uid.strip() != "0"
    assert "signatures and binding verified" in demo, demo[-2000:]
    assert "demo finished: the platform shut down cleanly" in demo, demo[-2000:]


def registry_needles(image: str, tmp: Path) -> tuple[list[str], list[str]]:
    """Strings from this machine's registry settings (as ci/docker-registry.sh
    hands them to the build) that must occur in no file of the image, and
    host names that must occur in no file name."""
    tmp.mkdir(parents=True, exist_ok=True)
    secret = tmp / "registry.tgz"
    suite = docker("run", "--rm", "--network", "none", image, "sh", "-c",
                   ". /etc/os-release && echo $VERSION_CODENAME").strip()
    subprocess.run([str(REPO / "ci/docker-registry.sh"), "collect", str(secret), suite],
                   check=True, capture_output=True, timeout=60)
    parts = tmp / "settings"
    parts.mkdir()
    subprocess.run(["tar", "-xzf", str(secret), "-C", str(parts)], check=True, timeout=60)
    needles: list[str] = []
    hosts: list[str] = []
    for name in ("apt-sources.list", "apt.conf", "apt-auth.conf"):
        f = parts / name
        if f.exists():
            needles += [line.strip() for line in f.read_text().splitlines() if line.strip()]
    if (parts / "apt-sources.list").exists():
        for line in (parts / "apt-sources.list").read_text().splitlines():
            uri = next(w for w in line.split()[1:] if "://" in w)
            needles.append(uri)
            hosts.append(uri.split("://", 1)[1].split("/")[0].split("@")[-1])
    if (parts / "env").exists():
        for line in (parts / "env").read_text().splitlines():
            name, _, value = line.removeprefix("export ").partition("=")
            needles.append(f"{name}={value}")
            if "://" in value:
                needles.append(value)
    if (parts / "ca.pem").exists():
        # Certificates that the image's packages ship (Debian's ca-certificates,
        # pip's certifi bundle) are no leak; any other certificate of the
        # builder's bundle is, wherever it lies (even in /etc/ssl/certs).
        public = docker("run", "--rm", "--network", "none", image, "sh", "-c",
                        "cat $(find /usr/share/ca-certificates -name '*.crt' 2>/dev/null)"
                        " $(find / -xdev -name cacert.pem 2>/dev/null) /dev/null")
        known = set(public.split())
        for cert in (parts / "ca.pem").read_text().split("-----END CERTIFICATE-----"):
            lines = [w for w in cert.split() if len(w) == 64]
            if lines and lines[0] not in known:
                needles.append(lines[0])
    return sorted(set(needles)), sorted(set(hosts))


def audit(image: str, tmp: Path) -> list[str]:
    """Every place where `image` keeps this machine's registry settings."""
    needles, hosts = registry_needles(image, tmp)
    assert needles, "this machine has no registry settings to look for"
    findings = []
    history = docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", image)
    inspect = docker("image", "inspect", image)
    for needle in needles:
        if needle in history:
            findings.append(f"docker history shows {needle!r}")
        if needle in inspect:
            findings.append(f"the image's configuration holds {needle!r}")
    env = json.loads(inspect)[0]["Config"]["Env"] or []
    findings += [f"the image's environment sets {e.split('=')[0]}" for e in env
                 if e.split("=")[0].lower().endswith("_proxy")
                 or e.startswith(("PIP_", "SSL_CERT", "REQUESTS_CA", "APT_CONFIG"))]
    # grep -F -f: every needle at once over the scanned trees; then file names.
    dirs = " ".join(SCANNED)
    script = f"grep -rIlF -f /dev/stdin {dirs} 2>/dev/null"
    if hosts:
        names = " -o ".join(f"-name '*{h}*'" for h in hosts)
        script += f"; find {dirs} -xdev \\( {names} \\) -print 2>/dev/null"
    found = docker("run", "--rm", "-i", "--network", "none", "--user", "0", image, "sh", "-c",
                   script + "; true", stdin="\n".join(needles) + "\n")
    findings += [f"file {f} holds a registry setting of the build" for f in found.split()]
    return findings


def test_the_image_holds_no_registry_settings_of_the_build(checked: Path, tmp_path: Path) -> None:
    assert audit(TAG, tmp_path) == []


def test_the_audit_finds_settings_planted_in_an_image(checked: Path, tmp_path: Path) -> None:
    """The check above can fail: an image derived from the built one, with the
    build's apt sources and CA bundle copied in and a proxy variable set, is caught."""
    secret = tmp_path / "registry.tgz"
    subprocess.run([str(REPO / "ci/docker-registry.sh"), "collect", str(secret), "trixie"],
                   check=True, capture_output=True, timeout=60)
    leaky, box = "cca-cosim:leaky-test", f"cca-cosim-leaky-{tmp_path.name}"
    try:
        docker("create", "--name", box, "--user", "0", TAG, "sh", "-c",
               "mkdir -p /etc/leak && tar -xzf /tmp/registry.tgz -C /etc/leak")
        docker("cp", str(secret), f"{box}:/tmp/registry.tgz")
        docker("start", "-a", box)
        docker("commit", "--change", "ENV http_proxy=http://proxy.invalid:3128", box, leaky)
        findings = audit(leaky, tmp_path / "audit")
        needles, _ = registry_needles(leaky, tmp_path / "needles")
    finally:
        docker("rm", "-f", box, check=False)
        docker("rmi", "-f", leaky, check=False)
    assert any("/etc/leak/apt-sources.list" in f for f in findings), findings
    assert any("environment sets http_proxy" in f for f in findings), findings
    private_ca = any(len(n) == 64 and " " not in n for n in needles)
    assert private_ca == any("/etc/leak/ca.pem" in f for f in findings), findings
