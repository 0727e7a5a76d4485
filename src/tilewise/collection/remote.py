"""URLs in a collection: an object, a folder (a prefix), a glob pattern over keys, ``@LIST`` lines.

Object storage is read with the rules of local files (:mod:`tilewise.collection.collect`),
applied to the keys of one listing:

* ``s3://bucket/prefix/`` (or ``s3://bucket/prefix`` when no object has that key) is a
  folder: every object below it whose extension is an image's, and every Zarr array
  (a prefix holding ``zarr.json`` or ``.zarray``) as one input; hidden names (``.x``)
  and what lies below them are skipped; a folder's objects come before its sub-folders,
  each sorted by name, as ``os.walk`` gives them; names are the keys below the prefix.
* ``s3://bucket/scenes/**/*.tif`` is a pattern with :func:`glob.glob`'s rules
  (``recursive=True``): ``*``, ``?`` and ``[...]`` match within one path segment and
  never a hidden name unless the pattern's segment starts with ``.``; ``**`` alone in a
  segment matches zero or more folders, none hidden; matches are sorted; a folder that
  matches is kept only if it is a Zarr array. The prefix before the first segment with
  a wildcard is listed once (paginated) and names are the keys below it.
* ``https://`` cannot be listed: a single object or ``@LIST`` lines; a pattern or a
  folder there is refused.

Every object's identity (size, ETag, last-modified; see
:func:`tilewise.io._remote.object_identity`) comes from the listing or a HEAD and goes
into the batch's journal, so a resumed batch redoes the files that changed.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from tilewise.collection.collect import IMAGE_SUFFIXES, Item
from tilewise.errors import ObjectNotFoundError, UsageError

__all__ = ["expand_url", "from_url_lines", "is_url_collection"]

log = logging.getLogger(__name__)

_MAGIC = frozenset("*?[")
#: HEAD requests of ``@LIST`` lines in flight at once.
_HEADS = 16


@dataclass
class _Folder:
    """A folder of a listing: its sub-folders and its objects (name -> identity)."""

    dirs: dict[str, _Folder] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    def is_zarr(self) -> bool:
        return "zarr.json" in self.files or ".zarray" in self.files

    def identity(self) -> str:
        """A Zarr array's identity: a hash of every object's key and identity."""
        digest = hashlib.blake2b(digest_size=16)
        for key, ident in self.walk_all(""):
            digest.update(f"{key}\0{ident}\n".encode())
        return f"zarr {digest.hexdigest()}"

    def walk_all(self, base: str) -> Iterator[tuple[str, str]]:
        for name in sorted(self.files):
            yield base + name, self.files[name]
        for name in sorted(self.dirs):
            yield from self.dirs[name].walk_all(f"{base}{name}/")


def _tree(listing: Sequence[tuple[str, str]]) -> _Folder:
    top = _Folder()
    for key, ident in listing:
        parts = key.split("/")
        if any(p == "" for p in parts[:-1]):
            continue  # "a//b" names no path a file system could hold
        node = top
        for part in parts[:-1]:
            node = node.dirs.setdefault(part, _Folder())
        if parts[-1]:  # "a/" is a folder marker, not an object
            node.files[parts[-1]] = ident
    return top


def _split(url: str) -> tuple[str, list[str]]:
    """``s3://bucket/a/b`` -> (``s3://bucket``, ``["a", "b"]``); a trailing ``/`` gives ``""``."""
    scheme, _, rest = url.partition("://")
    host, _, key = rest.partition("/")
    if not host:
        raise UsageError(f"{url}: not an object URL; write s3://BUCKET/KEY or https://HOST/PATH")
    parts = key.split("/")
    return f"{scheme.lower()}://{host}", [p for p in parts[:-1] if p] + [parts[-1]]


def _list(root: str, fixed: Sequence[str]) -> _Folder:
    from tilewise.io._remote import list_objects

    prefix = "".join(f"{part}/" for part in fixed)
    return _tree(list_objects(root, prefix))


def _url(root: str, parts: Sequence[str]) -> str:
    return "/".join([root, *parts])


def _walk(folder: _Folder, base: list[str]) -> Iterator[tuple[list[str], str]]:
    """Image objects and Zarr arrays below ``folder`` in ``os.walk``'s order (see the module)."""
    files = dict(folder.files)
    subdirs, skipped = [], 0
    for name in sorted(folder.dirs):
        sub = folder.dirs[name]
        if name.startswith("."):
            continue
        if sub.is_zarr():
            files[name] = sub.identity()
        else:
            subdirs.append(name)
    for name in sorted(files):
        if name.startswith("."):
            continue
        if name.lower().endswith((*IMAGE_SUFFIXES, ".zarr")) or name in folder.dirs:
            yield [*base, name], files[name]
        else:
            skipped += 1
    if skipped:
        log.info(
            "%s: skipped %d object(s) whose extension is not an image's", "/".join(base), skipped
        )
    for name in subdirs:
        yield from _walk(folder.dirs[name], [*base, name])


def _glob(
    folder: _Folder, parts: Sequence[str], path: list[str]
) -> Iterator[tuple[list[str], str | _Folder]]:
    """What the segments ``parts`` match below ``folder``, as :func:`glob.glob` would."""
    if not parts:
        yield path, folder
        return
    part, rest = parts[0], parts[1:]
    if part == "**":
        for sub_path, sub in _descendants(folder, path, dirs_only=bool(rest)):
            if isinstance(sub, _Folder):
                yield from _glob(sub, rest, sub_path)
            elif not rest:
                yield sub_path, sub
        return
    if _MAGIC & set(part):
        names = [*folder.dirs, *([] if rest else folder.files)]
        if not part.startswith("."):
            names = [n for n in names if not n.startswith(".")]
        matched = [n for n in names if fnmatch.fnmatchcase(n, part)]
    elif part == "":  # a pattern ending in "/" matches folders only
        yield path, folder
        return
    else:
        matched = [part] if part in folder.dirs or (not rest and part in folder.files) else []
    for name in matched:
        child = folder.dirs.get(name)
        if child is not None:
            yield from _glob(child, rest, [*path, name])
        elif not rest:
            yield [*path, name], folder.files[name]


def _descendants(
    folder: _Folder, path: list[str], *, dirs_only: bool
) -> Iterator[tuple[list[str], str | _Folder]]:
    """``folder`` itself, then every entry below it not hidden (``**``)."""
    yield path, folder
    for name in sorted({*folder.dirs, *([] if dirs_only else folder.files)}):
        if name.startswith("."):
            continue
        sub = folder.dirs.get(name)
        if sub is None:
            yield [*path, name], folder.files[name]
        else:
            yield from _descendants(sub, [*path, name], dirs_only=dirs_only)


def _folder_items(url: str, root: str, fixed: list[str], folder: _Folder) -> list[Item]:
    if folder.is_zarr():
        name = fixed[-1] if fixed else root.split("://", 1)[1]
        return [Item(_url(root, fixed), name, folder.identity())]
    found = [
        Item(_url(root, [*fixed, *rel]), "/".join(rel), ident) for rel, ident in _walk(folder, [])
    ]
    if not found:
        raise UsageError(f"{url}: no image objects found under this prefix")
    return found


def _head(url: str) -> str | None:
    """The object's identity, or None if there is no object at ``url``."""
    from tilewise.io._remote import head, object_identity

    try:
        return object_identity(head(url))
    except ObjectNotFoundError:
        return None


def _s3(url: str) -> list[Item]:
    root, parts = _split(url)
    if _MAGIC & set(root):
        raise UsageError(f"{url}: a pattern matches keys, not buckets; name the bucket")
    url = _url(root, parts)
    if parts[-1]:  # an object of that key wins, as a local file does, wildcards or not
        ident = _head(url)
        if ident is not None:
            return [Item(url, parts[-1], ident)]
    magic = [i for i, part in enumerate(parts) if _MAGIC & set(part)]
    if not magic:  # a folder: with a trailing "/", or a prefix that is no object's key
        fixed = [p for p in parts if p]
        folder = _list(root, fixed)
        if not folder.dirs and not folder.files:
            raise ObjectNotFoundError(f"{url}: no such object, and no object under this prefix")
        return _folder_items(url, root, fixed, folder)
    fixed = parts[: min(magic[0], len(parts) - 1)]
    items = []
    for rel, node in sorted(_glob(_list(root, fixed), parts[len(fixed) :], []), key=_key):
        if isinstance(node, _Folder):
            if node.is_zarr() and rel:
                items.append(Item(_url(root, [*fixed, *rel]), "/".join(rel), node.identity()))
            continue
        items.append(Item(_url(root, [*fixed, *rel]), "/".join(rel), node))
    if not items:
        raise UsageError(f"{url}: the pattern matches no objects")
    return items


def _key(found: tuple[list[str], object]) -> str:
    return "/".join(found[0])


def is_url_collection(url: str) -> bool:
    """Whether the URL names several images (a pattern or a folder), not one object or array."""
    if url.lower().startswith("s3://"):
        root, parts = _split(url)
        if any(_MAGIC & set(part) for part in parts) or parts[-1] == "":
            return True
        if _head(url) is not None:
            return False
        folder = _list(root, parts)
        return not folder.is_zarr() and bool(folder.dirs or folder.files)
    path = url.split("?", 1)[0]
    return path.endswith("/") or "*" in path or "[" in path


def expand_url(url: str) -> list[Item]:
    """The objects a URL argument names, with their output names and identities.

    Raises
    ------
    UsageError
        A pattern or folder over HTTP, a pattern matching nothing, a folder with no image.
    tilewise.errors.StorageError
        No such object or bucket, access denied (naming the URL).
    """
    if url.lower().startswith("s3://"):
        return _s3(url)
    parts = _split(url)[1]
    path = url.split("?", 1)[0]
    if parts[-1] == "" or "*" in path or "[" in path:
        raise UsageError(
            f"{url}: an HTTP server cannot be listed, so a folder or a pattern cannot be read "
            "there; name each object (one URL, or an @LIST file of URLs), or use s3://"
        )
    ident = _head(url)
    if ident is None:
        raise ObjectNotFoundError(f"{url}: no such object (cannot read it)")
    return [Item(url, parts[-1], ident)]


def from_url_lines(list_path: str, urls: Sequence[str]) -> list[Item]:
    """Items for the URL lines of an ``@LIST`` file, named below their common folder.

    Each URL is one object (looked up by HEAD, several at a time), never a pattern.
    """
    for url in urls:
        if _split(url)[1][-1] == "":
            raise UsageError(
                f"{list_path}: {url}: a line of a list names one object, not a folder; "
                "give the folder as an argument instead"
            )
    with ThreadPoolExecutor(min(_HEADS, len(urls))) as pool:
        identities = list(pool.map(_head, urls))
    for url, ident in zip(urls, identities, strict=True):
        if ident is None:
            raise ObjectNotFoundError(f"{url}: no such object (listed in {list_path})")
    split = [[root.replace("://", "/"), *parts] for root, parts in map(_split, urls)]
    common = split[0][:-1]
    for parts in split[1:]:
        size = 0
        while size < min(len(common), len(parts) - 1) and common[size] == parts[size]:
            size += 1
        common = common[:size]
    return [
        Item(url, "/".join(parts[len(common) :]), ident or "")
        for url, parts, ident in zip(urls, split, identities, strict=True)
    ]
