"""Load benchmark outputs, build whole-image reference results, and compare them.

Every comparison is pixel by pixel on the 0/255 masks.  Beyond the count of differing
pixels it tells where they are: in the outer ``radius``-px ring of the image (edge
handling), near tile borders (seams of a tiling without enough halo), or elsewhere
(a different kernel or rounding).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import tifffile
import zarr

KSIZE = (33, 33)
SIGMA = 4.0
RADIUS = 16
THRESHOLD = 127
BAND = 1024  # rows compared at a time


def threshold(blurred: np.ndarray) -> np.ndarray:
    """0/255 uint8 mask of ``blurred > 127``."""
    return np.where(blurred > THRESHOLD, np.uint8(255), np.uint8(0))


def opencv_reference(img: np.ndarray) -> np.ndarray:
    """Whole-image OpenCV result: 33-tap sigma-4 Gaussian, reflect-101 edges, threshold."""
    return threshold(cv2.GaussianBlur(img, KSIZE, SIGMA, borderType=cv2.BORDER_REFLECT_101))


def scipy_reference(img: np.ndarray) -> np.ndarray:
    """Whole-image scipy result (what dask-image computes per chunk), then threshold."""
    from scipy import ndimage

    return threshold(ndimage.gaussian_filter(img, SIGMA, truncate=4.0, mode="reflect"))


def float64_reference(img: np.ndarray, mode: str = "nearest", band: int = BAND) -> np.ndarray:
    """Exact result: float64 separable 33-tap Gaussian, rounded, thresholded.

    ``mode`` is scipy's edge mode: "nearest" copies edge pixels (libvips), "mirror" is
    reflect-101 (OpenCV).  Computed in row bands with a ``RADIUS`` halo to bound memory.
    A pixel is 255 when the blurred value is >= 127.5 (rounds to > 127).
    """
    from scipy import ndimage

    kernel = cv2.getGaussianKernel(2 * RADIUS + 1, SIGMA, ktype=cv2.CV_64F)[:, 0]
    h = img.shape[0]
    out = np.empty(img.shape, np.uint8)
    for y0 in range(0, h, band):
        y1 = min(h, y0 + band)
        ya, yb = max(0, y0 - RADIUS), min(h, y1 + RADIUS)
        cols = ndimage.correlate1d(img[ya:yb].astype(np.float64), kernel, axis=0, mode=mode)
        rows = ndimage.correlate1d(cols[y0 - ya : y1 - ya], kernel, axis=1, mode=mode)
        out[y0:y1] = np.where(rows >= THRESHOLD + 0.5, np.uint8(255), np.uint8(0))
    return out


def _pick_zarr_array(node: zarr.Array | zarr.Group) -> zarr.Array:
    if isinstance(node, zarr.Array):
        return node
    arrays = sorted(node.arrays(), key=lambda kv: kv[0])
    if not arrays:
        groups = sorted(node.groups(), key=lambda kv: kv[0])
        if not groups:
            raise ValueError("zarr group holds no array")
        return _pick_zarr_array(groups[0][1])
    # the largest array (full resolution if the group is a pyramid)
    return max((a for _, a in arrays), key=lambda a: int(np.prod(a.shape)))


def load_output(path: Path) -> np.ndarray:
    """Read a result (``.npy``, TIFF or Zarr) as a 2-D uint8 array."""
    if path.suffix == ".npy":
        arr = np.load(path, mmap_mode="r")
    elif path.suffix in {".tif", ".tiff"}:
        arr = tifffile.imread(path, maxworkers=2)
    elif path.suffix == ".zarr":
        arr = _pick_zarr_array(zarr.open(str(path), mode="r"))[...]
    else:
        raise ValueError(f"unknown output format: {path}")
    arr = np.asarray(arr)
    while arr.ndim > 2 and arr.shape[0] == 1:
        arr = arr[0]
    while arr.ndim > 2 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    return arr


@dataclass(frozen=True)
class Diff:
    """Where an output differs from a reference."""

    shape_ok: bool
    n_diff: int
    n_diff_interior: int
    n_diff_off_seams: int | None
    label: str

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly representation."""
        return asdict(self)


def _near_seams(n: int, tile: int | None, radius: int) -> np.ndarray:
    near = np.zeros(n, bool)
    near[:radius] = True
    near[n - radius :] = True
    if tile:
        for k in range(tile, n, tile):
            near[max(0, k - radius) : k + radius] = True
    return near


def compare(
    out: np.ndarray, ref: np.ndarray, *, radius: int = RADIUS, seam_tile: int | None = None
) -> Diff:
    """Compare ``out`` with ``ref`` and label it "exact", "seams" or "approximate".

    "seams" means every differing pixel lies within ``radius`` of a multiple of
    ``seam_tile`` (or of the image border), i.e. the pattern a tiling without halo leaves.
    """
    if out.shape != ref.shape:
        return Diff(False, -1, -1, None, f"shape mismatch {out.shape} != {ref.shape}")
    h, w = ref.shape
    interior_cols = np.zeros(w, bool)
    interior_cols[radius : w - radius] = True
    rows_near = _near_seams(h, seam_tile, radius)
    cols_near = _near_seams(w, seam_tile, radius)
    n = n_interior = n_off = 0
    for y0 in range(0, h, BAND):
        y1 = min(h, y0 + BAND)
        d = np.asarray(out[y0:y1]) != np.asarray(ref[y0:y1])
        n += int(d.sum())
        rows = np.arange(y0, y1)
        inner = d[(rows >= radius) & (rows < h - radius)]
        n_interior += int(inner[:, interior_cols].sum())
        n_off += int(d[~rows_near[y0:y1]][:, ~cols_near].sum())
    if n == 0:
        label = "exact"
    elif seam_tile and n_off == 0:
        label = "seams"
    else:
        label = "approximate"
    return Diff(True, n, n_interior, n_off if seam_tile else None, label)
