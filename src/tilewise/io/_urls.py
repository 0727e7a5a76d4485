"""Which paths name objects in storage: kept apart from :mod:`tilewise.io._remote`, so that
every run can ask without loading the object-storage client's module."""

from __future__ import annotations

import os

__all__ = ["is_url"]

_SCHEMES = ("s3://", "http://", "https://")


def is_url(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names an object in storage (``s3://``, ``http://``, ``https://``).

    >>> is_url("s3://bucket/a.tif"), is_url("/data/a.tif")
    (True, False)
    """
    return isinstance(path, str) and path.lower().startswith(_SCHEMES)
