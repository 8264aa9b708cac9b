"""`cosim images fetch|show`: the command-line side of cosim.images."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="images_command", metavar="ACTION",
                                parser_class=type(parser))
    sub.required = True
    fetch = sub.add_parser(
        "fetch", help="download Debian's arm64 kernel and busybox-static, build the initramfs",
        description="Download Debian's stock arm64 kernel (with realm guest support) and "
                    "busybox-static through a private apt configuration, check the kernel "
                    "config and build the realm initramfs, into the cache.  A cache that "
                    "already holds what is asked for is used without the network.")
    _cache_arg(fetch)
    fetch.add_argument("--suite", action="extend", nargs="+", metavar="SUITE",
                       help="Debian suites to take the kernel from, tried in order "
                            "(default: trixie-backports sid)")
    fetch.add_argument("--deb", action="extend", nargs="+", type=Path, metavar="FILE",
                       help="use these local .debs instead of the mirror: linux-image-*, or "
                            "linux-base/-binary/-modules-* of one release (and optionally "
                            "busybox-static)")
    fetch.add_argument("--kernel-version", metavar="VER",
                       help="a kernel release (7.3.4+deb13-arm64) or a linux-image-arm64 "
                            "version (default: the newest)")
    fetch.add_argument("--no-check", action="store_true",
                       help="keep a kernel whose config lacks realm support (warn only)")
    fetch.add_argument("--refresh", action="store_true",
                       help="ask the mirror for a newer kernel even if the cache has one")
    fetch.add_argument("--mirror", metavar="'URI [KEYRING]'",
                       help="Debian mirror and its keyring (default: what the machine's apt "
                            "sources name for its own suite)")
    show = sub.add_parser("show", help="what the cache holds: versions, paths, sizes")
    _cache_arg(show)


def _cache_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache", type=Path, metavar="DIR",
                        help="image cache (default: $COSIM_CACHE, $XDG_CACHE_HOME/cca-cosim or "
                             "~/.cache/cca-cosim)")


def run(args: argparse.Namespace) -> int:
    from .apt import Mirror
    from .cache import default_cache_dir, load_images
    from .errors import ImagesError
    from .fetch import DEFAULT_SUITES, FetchOptions, fetch_images

    cache = args.cache if args.cache is not None else default_cache_dir()
    try:
        if args.images_command == "show":
            print(load_images(cache).describe())
            return 0
        opts = FetchOptions(cache=cache, suites=tuple(args.suite or DEFAULT_SUITES),
                            debs=tuple(args.deb or ()), kernel_version=args.kernel_version,
                            check=not args.no_check, refresh=args.refresh,
                            mirror=Mirror.parse(args.mirror) if args.mirror else None)
        result = fetch_images(opts)
    except ImagesError as exc:
        print(f"cosim images: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"cosim images: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"cosim images: {result.message}")
    return 0
