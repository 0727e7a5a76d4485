"""Memory of a tiled run over a PNG (decoded whole) as the number of workers grows.

Writes an 8192 x 8192 RGB PNG (192 MiB decoded) and measures, for each worker count,
``tilewise run big.png out.zarr --op gaussian:sigma=2 --tile 1024 --workers N`` as a
process tree (``_measure.py``: wall, CPU, peak PSS). Before each run the decoded copies
(``tilewise.io._simple.decoded_dir()``) are removed, so every run decodes the PNG once.

    python benchmarks/whole_decoded.py --workers 1 2 4 --repeat 3

To measure another checkout of tilewise, put its ``src`` first on ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import measure


def make_png(path: Path, side: int) -> None:
    """A structured RGB image with a little noise, written with fast zlib."""
    import imagecodecs

    r = np.arange(side, dtype=np.uint32)
    image = np.empty((side, side, 3), np.uint8)
    image[..., 0] = (np.add.outer(r, r) // 64) % 256
    image[..., 1] = (np.subtract.outer(r, r) // 32) % 256
    image[..., 2] = ((r[:, None] * 7) ^ (r[None, :] * 3)) % 256
    image += np.random.default_rng(0).integers(0, 8, image.shape, dtype=np.uint8)
    path.write_bytes(imagecodecs.png_encode(image, level=1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--side", type=int, default=8192)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from tilewise.io import _simple

    decoded = getattr(_simple, "decoded_dir", None)

    def cold() -> None:
        """Remove the decoded copies, so that the run decodes the PNG once itself."""
        if decoded is not None:
            shutil.rmtree(decoded(), ignore_errors=True)

    tilewise_bin = str(Path(sys.executable).with_name("tilewise"))
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        png = Path(tmp) / "big.png"
        make_png(png, args.side)
        for workers in args.workers:
            argv = [tilewise_bin, "run", str(png), str(Path(tmp) / "out.zarr"), "--op",
                    "gaussian:sigma=2", "--tile", "1024", "--workers", str(workers), "-q",
                    "--overwrite"]  # fmt: skip
            summary = measure(
                argv, repeat=args.repeat, warmup=0, env=dict(os.environ), before_each=cold
            )
            results.append({"workers": workers, **summary.to_dict()})
            print(
                f"{workers} worker(s): wall {summary.wall_s:.2f} s, CPU {summary.cpu_s:.2f} s, "
                f"tree peak PSS {summary.peak_pss_mib:.0f} MiB",
                file=sys.stderr,
            )
        cold()
    print(json.dumps(results, indent=1))
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
