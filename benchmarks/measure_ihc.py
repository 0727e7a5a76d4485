"""tilewise measure on a real microscopy image equals the whole-image detection.

The image is scikit-image's ``ihc.png`` (immunohistochemistry, nuclei stained
with hematoxylin; shipped inside the scikit-image package, nothing downloaded).
Nuclei are dark: grayscale, invert, a Gaussian, then peaks. The reference is
``peak_local_max`` on the whole image after the same ops.

    .venv/bin/python benchmarks/measure_ihc.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import skimage
from skimage.feature import peak_local_max

import tilewise

OPS = ["grayscale", "invert", "gaussian:sigma=2"]
DETECT = "peaks:min_distance=5,threshold=120"


def main() -> int:
    src = Path(skimage.data_dir) / "ihc.png"
    with tempfile.TemporaryDirectory() as tmp:
        table = Path(tmp) / "nuclei.csv"
        tilewise.measure(src, OPS, detect=DETECT, tile=100, workers=2, output=table)
        head = table.read_text().splitlines()[:4]
        got = np.loadtxt(table, delimiter=",", skiprows=1, ndmin=2)
    whole = tilewise.process(skimage.io.imread(src), OPS, tile=100_000)
    ref = peak_local_max(whole, min_distance=5, threshold_abs=120)
    same = sorted(map(tuple, got[:, :2].astype(int).tolist())) == sorted(map(tuple, ref.tolist()))
    print(
        f"{src.name}: tilewise measure found {len(got)} peaks on 100-px tiles, "
        f"the whole image {len(ref)}"
    )
    print("equal" if same else "DIFFERENT")
    print("\n".join(head))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
