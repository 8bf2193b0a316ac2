"""Compiler flags for every Numba kernel in :mod:`detection.kernels`, kept in one place.

``SERIAL`` is for small inlined helpers and serial loops, ``PARALLEL`` for kernels that split
work over devices with ``prange``. ``cache=True`` writes the compiled code next to the module so
a restarted process does not pay the compile again. ``fastmath`` stays off: the detectors
compare against NaN and must agree with the NumPy reference.

>>> SERIAL["cache"], PARALLEL["parallel"]
(True, True)
"""

from __future__ import annotations

SERIAL: dict = {"cache": True, "nogil": True, "error_model": "numpy"}
PARALLEL: dict = {**SERIAL, "parallel": True}
