"""Output paths checked before any work: a symlinked output is refused, not failed at the end."""

from __future__ import annotations

from click.testing import CliRunner

from tests.conftest import leftovers, make_image, write_image
from tilewise.cli.app import cli


def test_a_symlinked_output_is_refused_before_any_tile_runs(tmp_path):
    src = write_image(tmp_path / "in.tif", make_image((64, 64)), tile=(32, 32))
    target = tmp_path / "real.zarr"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    link = tmp_path / "link.zarr"
    link.symlink_to(target)
    args = ["run", str(src), str(link), "--op", "invert", "--tile", "32", "--workers", "1"]
    result = CliRunner().invoke(cli, [*args, "--overwrite", "-q"])
    assert result.exit_code == 2, result.output
    assert f"{link}: is a symlink" in result.output
    assert link.is_symlink() and (target / "keep.txt").read_text() == "mine"
    assert leftovers(tmp_path) == []
