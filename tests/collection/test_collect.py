"""Inputs to files and output names: folders, globs, @lists, and names that try to escape."""

from __future__ import annotations

import os

import pytest

from tilewise.collection.collect import check_name, collect, output_name, unique_outputs
from tilewise.errors import UsageError


def touch(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def names(items):
    return [i.name for i in items]


def test_folders_are_walked_sorted_skipping_hidden_and_non_images(tmp_path):
    for name in ("b.tif", "a.PNG", "sub/z.jpg", "sub/a.tiff", ".hidden.tif", "notes.txt"):
        touch(tmp_path / "in" / name)
    touch(tmp_path / "in" / ".git" / "x.tif")
    items = collect([str(tmp_path / "in")])
    assert names(items) == ["a.PNG", "b.tif", "sub/a.tiff", "sub/z.jpg"]
    assert all(os.path.isabs(i.source) for i in items)


def test_arguments_keep_their_order_and_files_keep_their_own_name(tmp_path):
    first = touch(tmp_path / "x" / "one.tif")
    touch(tmp_path / "y" / "two.tif")
    items = collect([str(tmp_path / "y"), str(first)])
    assert names(items) == ["two.tif", "one.tif"]


def test_a_zarr_array_in_a_folder_is_one_input(tmp_path):
    touch(tmp_path / "in" / "arr.zarr" / "zarr.json", b"{}")
    touch(tmp_path / "in" / "arr.zarr" / "c" / "0" / "0")
    assert names(collect([str(tmp_path / "in")])) == ["arr.zarr"]


def test_globs_name_outputs_below_their_fixed_folder(tmp_path, monkeypatch):
    for name in ("a/x.tif", "a/b/y.tif", "a/b/c/z.tif", "a/b/w.png"):
        touch(tmp_path / "data" / name)
    monkeypatch.chdir(tmp_path)
    items = collect(["data/a/**/*.tif"])
    assert names(items) == ["b/c/z.tif", "b/y.tif", "x.tif"]
    with pytest.raises(UsageError, match="matches no files"):
        collect(["data/*.nothing"])


def test_list_files_resolve_lines_from_their_folder_and_never_escape(tmp_path):
    inside = touch(tmp_path / "lists" / "imgs" / "a.tif")
    above = touch(tmp_path / "elsewhere" / "b.tif")
    absolute = touch(tmp_path / "deep" / "er" / "c.tif")
    listing = tmp_path / "lists" / "files.txt"
    listing.write_text(f"# comment\nimgs/a.tif\n\n../elsewhere/b.tif\n{absolute}\n")
    items = collect([f"@{listing}"])
    assert [i.source for i in items] == [str(inside), str(above), str(absolute)]
    # names are below the folder common to every line: no '..', never absolute
    assert names(items) == ["lists/imgs/a.tif", "elsewhere/b.tif", "deep/er/c.tif"]
    for item in items:
        check_name(item.name)


def test_a_list_of_hostile_lines_maps_inside(tmp_path):
    target = touch(tmp_path / "etc" / "passwd.tif")
    listing = tmp_path / "a" / "b" / "list.txt"
    listing.parent.mkdir(parents=True)
    listing.write_text("../../etc/passwd.tif\n../../../" + str(target).lstrip("/") + "\n")
    items = collect([f"@{listing}"])
    assert all(".." not in i.name.split("/") and not i.name.startswith("/") for i in items)


@pytest.mark.parametrize(
    "name", ["../x.tif", "a/../../x.tif", "/etc/x.tif", "a//b.tif", "./a.tif", ""]
)
def test_unsafe_names_are_refused(name):
    with pytest.raises(UsageError, match="would leave the output folder"):
        check_name(name)


def test_a_backslash_is_a_plain_character_in_posix_names():
    assert check_name("a\\..\\b") == "a\\..\\b"  # one file name, inside the folder


def test_names_with_spaces_unicode_and_dashes_are_fine(tmp_path):
    for name in ("with space.tif", "ünï cødé.png", "-rf.tif", "dots..tif"):
        touch(tmp_path / "in" / name)
    assert sorted(names(collect([str(tmp_path / "in")]))) == sorted(
        ["with space.tif", "ünï cødé.png", "-rf.tif", "dots..tif"]
    )


def test_output_names_keep_or_change_the_extension():
    assert output_name("a/b.PNG", None) == "a/b.PNG"
    assert output_name("a/b.png", "tiff") == "a/b.tif"
    assert output_name("a/b.jpeg", "npy") == "a/b.npy"
    assert output_name("scan.dat", None) == "scan.dat.tif"
    assert output_name("scan.dat", "png") == "scan.dat.png"


def test_two_files_on_one_output_name_are_refused_and_repeats_dropped(tmp_path):
    a = touch(tmp_path / "x" / "img.png")
    b = touch(tmp_path / "x" / "img.tif")
    items = collect([str(a), str(b), str(a)])
    with pytest.raises(UsageError, match=r"would both be written to img\.tif"):
        unique_outputs(items, "tiff")
    kept = unique_outputs(collect([str(a), str(a)]), None)
    assert names(kept) == ["img.png"]


def test_the_output_folder_is_not_taken_as_input(tmp_path):
    touch(tmp_path / "in" / "a.tif")
    touch(tmp_path / "in" / "out" / "a.tif")
    items = collect([str(tmp_path / "in")], exclude=[str(tmp_path / "in" / "out")])
    assert names(items) == ["a.tif"]


def test_missing_inputs_and_empty_folders_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="no such file"):
        collect([str(tmp_path / "nope.tif")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no image files"):
        collect([str(tmp_path / "empty")])
    (tmp_path / "blank.txt").write_text("\n# nothing\n")
    with pytest.raises(UsageError, match="empty"):
        collect([f"@{tmp_path / 'blank.txt'}"])
