"""Peer: pyvips gaussblur with an integer mask (libvips' default precision).

Usage: ``python pyvips_int.py INPUT.tif OUTPUT.tif`` (VIPS_CONCURRENCY=2).

The integer mask is the float Gaussian scaled so its peak is 20 and rounded: for
sigma 4 the 33-tap mask has 6 zero taps at each end and coarse weights, so this is an
approximation (and edges are copied, not reflected, as in ``pyvips_float.py``).
"""

from __future__ import annotations

import sys

from _vips import run

if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2], "integer")
