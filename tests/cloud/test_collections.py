"""Collections in object storage: ``batch`` and ``measure`` over patterns, prefixes and lists
of URLs, named and ordered as the same files on disk."""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tilewise
from tests.cloud.conftest import HttpServer, S3Server, tilewise_cmd
from tests.conftest import make_image, write_image
from tilewise.collection.collect import collect
from tilewise.collection.measure import measure_files
from tilewise.collection.remote import _glob, _tree
from tilewise.errors import ObjectNotFoundError, UsageError
from tilewise.runner.journal import Journal

#: Keys below ``scenes/``: nested prefixes, a hidden folder, a file of no image's extension.
FILES = {
    "a.tif": (40, 48),
    "x/b.tif": (48, 40),
    "x/y/c.tif": (150, 140),  # over the batch's tile_above: through the tiled runner
    "x/d.tiff": (32, 32),
    "x.tif": (36, 36),
    ".hidden/e.tif": (32, 32),
    "notes.txt": None,
}
BATCH: dict[str, Any] = {"ops": ["invert"], "executor": "serial", "progress": False}


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The local folder ``scenes`` holding :data:`FILES`."""
    root = tmp_path_factory.mktemp("local") / "scenes"
    for seed, (name, shape) in enumerate(FILES.items()):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if shape is None:
            path.write_text("not an image")
        else:
            write_image(path, make_image(shape, seed=seed))
    return root


@pytest.fixture(scope="module")
def bucket(s3_server: S3Server, scenes: Path) -> str:
    """``s3://scenes-bkt`` with :data:`FILES` under ``scenes/``."""
    bucket = s3_server.bucket("scenes-bkt")
    s3_server.upload(scenes, f"{bucket}/scenes")
    return bucket


def _outputs(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


@pytest.mark.parametrize(
    "pattern",
    ["**/*.tif", "**", "*", "x/*", "*/*.tif", "x/**/*.[tb]*", ".hidden/*", "**/.*/*", "?.tif"],
)
def test_patterns_match_the_keys_glob_matches_on_disk(scenes: Path, pattern: str) -> None:
    keys = [p.relative_to(scenes).as_posix() for p in scenes.rglob("*") if p.is_file()]
    tree = _tree([(key, "") for key in keys])
    on_disk = sorted(glob.glob(os.path.join(scenes, pattern), recursive=True))
    want = [os.path.relpath(p, scenes) for p in on_disk if os.path.isfile(p)]
    got = sorted("/".join(rel) for rel, node in _glob(tree, pattern.split("/"), []))
    assert [g for g in got if g in keys] == want


def test_a_batch_over_a_pattern_in_a_bucket_writes_what_the_local_batch_writes(
    bucket: str, scenes: Path, tmp_path: Path
) -> None:
    options = {**BATCH, "tile_above": 140 * 140, "tile": 64}
    pattern = scenes / "**" / "*.tif"
    local = tilewise.batch(str(pattern), out=tmp_path / "local", **options)
    remote = tilewise.batch(f"{bucket}/scenes/**/*.tif", out=tmp_path / "remote", **options)
    assert local.ok and remote.ok, remote.failures
    assert remote.done == local.done == 4  # the hidden folder is skipped
    assert remote.tiled == [f"{bucket}/scenes/x/y/c.tif"]
    want = _outputs(tmp_path / "local")
    assert sorted(want) == ["a.tif", "x.tif", "x/b.tif", "x/y/c.tif"]
    assert _outputs(tmp_path / "remote") == want

    folder = tilewise.batch(f"{bucket}/scenes/", out=tmp_path / "folder", **options)
    local = tilewise.batch(scenes, out=tmp_path / "local-folder", **options)
    assert folder.ok and folder.done == 5  # the .tiff too; not notes.txt
    assert _outputs(tmp_path / "folder") == _outputs(tmp_path / "local-folder")
    for url, path in ((f"{bucket}/scenes/", scenes), (f"{bucket}/scenes/**/*.tif", pattern)):
        assert [i.name for i in collect([url])] == [i.name for i in collect([str(path)])]

    # worker processes: a stack's sink stays open in the process that wrote it
    resized = {**BATCH, "ops": ["resize:shape=16x16"], "executor": "local", "workers": 1}
    stack = tilewise.batch(f"{bucket}/scenes/x", stack=tmp_path / "s.npy", **resized)
    local = tilewise.batch(scenes / "x", stack=tmp_path / "local.npy", **resized)
    assert stack.ok and stack.done == 3
    assert (tmp_path / "s.npy").read_bytes() == (tmp_path / "local.npy").read_bytes()
    table = tilewise.measure(f"{bucket}/scenes/*.tif", detect="regions:threshold=127", frame=False)
    assert sorted(set(table["file"])) == ["a.tif", "x.tif"]  # a pattern is a collection


def test_lists_of_urls_over_s3_and_http(
    bucket: str, scenes: Path, http_server: HttpServer, tmp_path: Path
) -> None:
    for name in ("a.tif", "x/b.tif"):
        target = http_server.root / "lists" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((scenes / name).read_bytes())
    s3_list, http_list = tmp_path / "s3.txt", tmp_path / "http.txt"
    s3_list.write_text(f"# scenes\n{bucket}/scenes/x/y/c.tif\n{bucket}/scenes/x/d.tiff\n")
    http_list.write_text(f"{http_server.url('lists/a.tif')}\n{http_server.url('lists/x/b.tif')}\n")
    report = tilewise.batch([f"@{s3_list}", f"@{http_list}"], out=tmp_path / "out", **BATCH)
    assert report.ok and report.done == 4, report.failures
    local = tmp_path / "local"
    for name in ("x/y/c.tif", "x/d.tiff", "a.tif", "x/b.tif"):
        (local / name).parent.mkdir(parents=True, exist_ok=True)
        (local / name).write_bytes((scenes / name).read_bytes())
    first, second = tmp_path / "local1.txt", tmp_path / "local2.txt"
    first.write_text("local/x/y/c.tif\nlocal/x/d.tiff\n")
    second.write_text("local/a.tif\nlocal/x/b.tif\n")
    want = tilewise.batch([f"@{first}", f"@{second}"], out=tmp_path / "want", **BATCH)
    assert want.ok
    got = _outputs(tmp_path / "out")
    assert sorted(got) == ["a.tif", "d.tiff", "x/b.tif", "y/c.tif"]  # below each list's folder
    assert got == _outputs(tmp_path / "want")


def test_urls_that_name_nothing_are_refused_before_work(
    s3_server: S3Server, bucket: str, http_server: HttpServer, tmp_path: Path
) -> None:
    done = tilewise_cmd(
        "batch", f"{bucket}/scenes/**/*.jp2", "--out", str(tmp_path / "o"), "--op", "invert"
    )
    assert done.returncode == 2, done.stderr
    assert f"{bucket}/scenes/**/*.jp2: the pattern matches no objects" in done.stderr
    assert not (tmp_path / "o").exists()
    listed = tmp_path / "mixed.txt"
    listed.write_text(f"{bucket}/scenes/a.tif\n{tmp_path}/a.tif\n")
    refusals: list[tuple[str, type[Exception], str]] = [
        ("s3://no-such-bucket/*.tif", ObjectNotFoundError, "s3://no-such-bucket/"),
        (f"{bucket}/nothing/", ObjectNotFoundError, f"{bucket}/nothing/: no such object"),
        (f"{bucket}/scenes/x/b.tiff", ObjectNotFoundError, f"{bucket}/scenes/x/b.tiff: no such"),
        (http_server.url("*.tif"), UsageError, "cannot be listed"),
        (http_server.url("lists/"), UsageError, "cannot be listed"),
        (http_server.url("gone.tif"), ObjectNotFoundError, "gone.tif: no such object"),
        (f"@{listed}", UsageError, "mixes URLs and local paths"),
        ("s3://denied/scenes/*.tif", tilewise.errors.AccessDeniedError, "s3://denied/"),
    ]
    for source, error, message in refusals:
        with pytest.raises(error, match=message.replace("*", r"\*").replace("?", r"\?")):
            tilewise.batch(source, out=tmp_path / "o", **BATCH)
    assert not (tmp_path / "o").exists()


def test_a_resumed_batch_skips_done_objects_and_redoes_changed_ones(
    s3_server: S3Server, scenes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = s3_server.bucket("resumed")
    s3_server.upload(scenes, f"{bucket}/in")
    pattern, out = f"{bucket}/in/x/**/*", tmp_path / "out"
    monkeypatch.setattr(Journal, "remove", lambda journal: None)  # as if stopped before it
    first = tilewise.batch(pattern, out=out, **BATCH)
    assert first.ok and first.done == 3
    again = tilewise.batch(pattern, out=out, resume=True, **BATCH)
    assert again.skipped == 3 and again.done == 0 and again.extra["redone_changed"] == []
    changed = tmp_path / "b.tif"
    write_image(changed, make_image((48, 40), seed=99))
    s3_server.upload(changed, f"{bucket}/in/x/b.tif")
    redone = tilewise.batch(pattern, out=out, resume=True, **BATCH)
    assert redone.skipped == 2 and redone.done == 1
    assert redone.extra["redone_changed"] == [0]  # x/b.tif, first in glob's order
    want = tilewise.batch(str(changed), out=tmp_path / "want", **BATCH)
    assert want.ok
    assert (out / "b.tif").read_bytes() == (tmp_path / "want" / "b.tif").read_bytes()


def test_measure_over_a_prefix_gives_the_local_table_and_resumes_changed_objects(
    s3_server: S3Server, scenes: Path, tmp_path: Path
) -> None:
    bucket = s3_server.bucket("measured-files")
    s3_server.upload(scenes, f"{bucket}/scenes")
    broken = tmp_path / "z.tif"
    broken.write_bytes(b"II*\x00 not a TIFF")
    s3_server.upload(broken, f"{bucket}/scenes/x/z.tif")  # fails: the journal is kept
    options: dict[str, Any] = {"tile": 64, "executor": "serial"}
    args, detect = (f"{bucket}/scenes/x", "gaussian:sigma=1"), "regions:threshold=127,min_area=4"
    table = tmp_path / "t.csv"
    report, got = measure_files(*args, detect=detect, output=table, **options)
    want = tilewise.measure(scenes / "x", args[1], detect=detect, frame=False, **options)
    assert report.done == 3 and [f.source for f in report.failed_files] == [
        f"{bucket}/scenes/x/z.tif"
    ]
    assert got is not None and got.keys() == want.keys() and len(want["label"]) > 10
    assert sorted(set(got["file"])) == ["b.tif", "d.tiff", "y/c.tif"]
    for column in want:
        np.testing.assert_array_equal(got[column], want[column], err_msg=column)

    changed = tmp_path / "x" / "d.tiff"
    changed.parent.mkdir()
    write_image(changed, make_image((32, 32), seed=98))
    s3_server.upload(changed, f"{bucket}/scenes/x/d.tiff")
    report, again = measure_files(*args, detect=detect, output=table, resume=True, **options)
    assert report.skipped == 2 and report.done == 1 and report.failed == 1
    want = tilewise.measure(changed.parent, args[1], detect=detect, frame=False, **options)
    assert again is not None
    rows = again["file"] == "d.tiff"
    np.testing.assert_array_equal(again["label"][rows], want["label"])
    np.testing.assert_array_equal(again["area"][rows], want["area"])
