"""Peer: pyvips gaussblur with a float mask.

Usage: ``python pyvips_float.py INPUT.tif OUTPUT.tif`` (VIPS_CONCURRENCY=2).

The 33-tap float mask is the exact Gaussian (the blurred values are rounded to uchar
before the threshold).  libvips extends the image by copying edge pixels (not
reflect-101), so pixels within 16 px of the border differ from OpenCV's result; in the
interior the few differences are OpenCV's own: its uint8 GaussianBlur is fixed-point.
"""

from __future__ import annotations

import sys

from _vips import run

if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2], "float")
