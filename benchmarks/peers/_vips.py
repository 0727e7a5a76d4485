"""Shared code of the pyvips peers (``pyvips_int.py`` and ``pyvips_float.py``)."""

from __future__ import annotations

import os

# libvips reads this when it initialises, i.e. on ``import pyvips``.
os.environ.setdefault("VIPS_CONCURRENCY", "2")

import pyvips

SIGMA = 4.0
# vips_gaussmat() makes the half-width the first integer x with exp(-x^2 / (2 sigma^2))
# < min_ampl, and the mask 2x - 1 wide.  For sigma 4 any min_ampl in
# (exp(-289/32), exp(-256/32)] = (1.196e-4, 3.35e-4] gives x = 17, i.e. 33 taps
# (radius 16).  The default min_ampl 0.2 gives 15 taps only.
# gaussblur() itself cannot get there: its min_ampl property is limited to [0.001, 1]
# (libvips 8.14; a smaller value only prints a GLib warning and is IGNORED, leaving 0.2),
# and 0.001 gives 29 taps.  gaussblur() is exactly gaussmat() + convsep() (checked
# bit for bit at min_ampl 0.001), so we call those two with the 33-tap mask.
MIN_AMPL = 2e-4
THRESHOLD = 127


def gaussian_mask(precision: str) -> pyvips.Image:
    """The separable 33-tap sigma-4 mask gaussblur would build for ``precision``."""
    return pyvips.Image.gaussmat(SIGMA, MIN_AMPL, separable=True, precision=precision)


def blur(img: pyvips.Image, precision: str) -> pyvips.Image:
    """``gaussblur(4)`` with a 33-tap mask, as uchar.

    With precision "integer" convsep returns uchar itself.  With "float" it returns float,
    which we round to uchar (a plain cast would truncate), so the threshold below sees
    the same rounded uint8 intermediate as the other tools.
    """
    out = img.convsep(gaussian_mask(precision), precision=precision)
    if out.format != "uchar":
        out = out.rint().cast("uchar")
    return out


def run(src: str, dst: str, precision: str) -> None:
    """Blur (``precision`` "integer" or "float"), threshold and write a tiled TIFF."""
    img = pyvips.Image.new_from_file(src, access="sequential")
    mask = (blur(img, precision) > THRESHOLD).ifthenelse(255, 0).cast("uchar")
    mask.tiffsave(
        dst,
        tile=True,
        tile_width=512,
        tile_height=512,
        compression="deflate",
        bigtiff=True,
    )


def mask_width(precision: str) -> int:
    """Width of the separable mask used."""
    return int(gaussian_mask(precision).width)
