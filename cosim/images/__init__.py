"""The default realm guest images: Debian's stock arm64 kernel and an initramfs
built around busybox-static, fetched with a private apt configuration into a
cache (`cosim images fetch`), never built from source.  docs/images.md.

    imgs = load_images()          # never touches the network
    imgs.kernel, imgs.initrd      # raw arm64 Image, gzip newc cpio
    params = [command_param("cat /proc/cpuinfo"), attest_param(challenge)]

Imports nothing of cosim but config (for the repository's ci/apt-mirror.sh)."""

from .cache import LOCAL_SUITE, PackageRef, RealmImages, default_cache_dir, load_images
from .errors import ImagesError, ImagesMissing
from .fetch import DEFAULT_SUITES, FetchOptions, FetchResult, fetch_images
from .kernel import is_arm64_image
from .protocol import (
    ATTEST_BEGIN,
    ATTEST_CHALLENGE,
    ATTEST_END,
    ATTEST_FAILED,
    ATTEST_PARAM,
    CHALLENGE_SIZE,
    CMD_PARAM,
    COMMAND_EXIT,
    COMMAND_EXIT_RE,
    COMMAND_LINE_SIZE,
    INIT_MARKER,
    MODULE_FAILED,
    POWEROFF_FAILED,
    SHELL_EXIT,
    Attestation,
    AttestationError,
    attest_param,
    command_param,
    parse_attestation,
    parse_command_status,
)

__all__ = [
    "ATTEST_BEGIN", "ATTEST_CHALLENGE", "ATTEST_END", "ATTEST_FAILED", "ATTEST_PARAM",
    "CHALLENGE_SIZE", "CMD_PARAM", "COMMAND_EXIT", "COMMAND_EXIT_RE", "COMMAND_LINE_SIZE",
    "DEFAULT_SUITES", "INIT_MARKER", "LOCAL_SUITE", "MODULE_FAILED", "POWEROFF_FAILED",
    "SHELL_EXIT", "Attestation", "AttestationError", "FetchOptions", "FetchResult",
    "ImagesError", "ImagesMissing", "PackageRef", "RealmImages", "attest_param",
    "command_param", "default_cache_dir", "fetch_images", "is_arm64_image", "load_images",
    "parse_attestation", "parse_command_status",
]
