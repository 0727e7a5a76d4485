"""tilewise measure on fluorescent nuclei with ground truth: equal to the whole image, and scored.

The image is StarDist's ``img2d.tif`` (512×512 uint16, fluorescent nuclei) with its
annotated instance labels ``mask2d.tif`` (125 nuclei), both shipped inside the
``stardist`` wheel (``pip install stardist``; the package is located, not imported,
and nothing is downloaded). The detection is a Gaussian then peaks; the reference is
``peak_local_max`` on the whole image after the same Gaussian. Against the ground
truth, each annotated nucleus is matched by at most one peak inside it: peaks in an
already matched nucleus or on background are false positives, unmatched nuclei missed.

    .venv/bin/python benchmarks/measure_nuclei.py [--tile 97] [--workers 2]
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import tifffile
from skimage.feature import peak_local_max

import tilewise

SIGMA, MIN_DISTANCE, THRESHOLD = 3, 7, 40
OPS = [f"gaussian:sigma={SIGMA}"]
DETECT = f"peaks:min_distance={MIN_DISTANCE},threshold={THRESHOLD},exclude_border=0"


def stardist_images() -> Path:
    spec = importlib.util.find_spec("stardist")  # without importing it
    if spec is None or not spec.submodule_search_locations:
        sys.exit("needs the stardist package: pip install 'stardist>=0.9'")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "images"


def score(peaks: np.ndarray, truth: np.ndarray) -> tuple[int, int, int]:
    """(true positives, false positives, missed): each nucleus matched by one peak at most."""
    hit = truth[peaks[:, 0], peaks[:, 1]]
    true_pos = len(np.unique(hit[hit > 0]))
    return true_pos, len(peaks) - true_pos, len(np.unique(truth[truth > 0])) - true_pos


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tile", type=int, default=97)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    images = stardist_images()
    truth = tifffile.imread(images / "mask2d.tif")
    with tempfile.TemporaryDirectory() as tmp:
        src, table = Path(tmp) / "img2d.tif", Path(tmp) / "nuclei.csv"
        shutil.copyfile(images / "img2d.tif", src)
        tilewise.measure(
            src, OPS, detect=DETECT, tile=args.tile, workers=args.workers, output=table
        )
        head = table.read_text().splitlines()[:4]
        got = np.loadtxt(table, delimiter=",", skiprows=1, ndmin=2)[:, :2].astype(np.intp)
    whole = tilewise.process(tifffile.imread(images / "img2d.tif"), OPS, tile=100_000)
    ref = peak_local_max(
        whole, min_distance=MIN_DISTANCE, threshold_abs=THRESHOLD, exclude_border=False
    )
    same = sorted(map(tuple, got.tolist())) == sorted(map(tuple, ref.tolist()))
    true_pos, false_pos, missed = score(got, truth)
    print(
        f"img2d.tif, ops {OPS}, {DETECT}: tilewise measure found {len(got)} peaks on "
        f"{args.tile}-px tiles, the whole image {len(ref)}: {'equal' if same else 'DIFFERENT'}"
    )
    print(
        f"against {true_pos + missed} annotated nuclei: {true_pos} found, {false_pos} false "
        f"positives, {missed} missed (precision {true_pos / len(got):.2f}, "
        f"recall {true_pos / (true_pos + missed):.2f})"
    )
    print("\n".join(head))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
