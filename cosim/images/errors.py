"""The errors of cosim.images: each carries one line that says what is wrong."""

from __future__ import annotations


class ImagesError(Exception):
    """Fetching or building the realm images failed (one-line message)."""


class ImagesMissing(ImagesError):
    """The cache holds no usable realm images."""


class AptError(ImagesError):
    """The private apt-get failed."""


class MirrorUnreachable(AptError):
    """apt could not reach the mirror (network down, name not resolved...)."""
