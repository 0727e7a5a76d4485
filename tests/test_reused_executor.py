"""An Executor given by the caller is left open: one set of warm workers serves many calls."""

from __future__ import annotations

import numpy as np

import tilewise
from tests.conftest import make_image, read_image, write_image
from tilewise.executors.local import LocalExecutor

OPS = ["gaussian:sigma=2", "threshold:value=127"]


def test_the_same_workers_serve_runs_and_batches_until_the_caller_closes_them(tmp_path):
    image = make_image((300, 260))
    source = write_image(tmp_path / "in.tif", image)
    expected = tilewise.process(image, OPS, tile=300)
    (tmp_path / "files").mkdir()
    files = [
        write_image(tmp_path / "files" / f"{i}.tif", make_image((40, 50), seed=i)) for i in range(6)
    ]
    executor = LocalExecutor(2)
    try:
        first = tilewise.run(source, tmp_path / "a.npy", OPS, tile=64, executor=executor)
        second = tilewise.run(source, tmp_path / "b.npy", OPS, tile=64, executor=executor)
        stacked = tilewise.batch(
            [str(f) for f in files], stack=tmp_path / "s.npy", ops=OPS, executor=executor
        )
        third = tilewise.run(source, tmp_path / "c.npy", OPS, tile=64, executor=executor)
    finally:
        executor.close()
    assert first.ok and second.ok and stacked.ok and third.ok
    workers = [{t.worker for t in report.tiles} for report in (first, second, third)]
    assert workers[0] == workers[1] == workers[2]  # not restarted between calls
    for name in ("a", "b", "c"):
        np.testing.assert_array_equal(read_image(tmp_path / f"{name}.npy"), expected)
    assert np.load(tmp_path / "s.npy").shape == (6, 40, 50)
