"""Numba kernels for the streaming anomaly detectors.

One module per detector holds its per-(device, sensor) update as small ``@njit`` functions;
``fleet.py`` composes them into the batch kernel over all devices; ``reference.py`` is the plain
NumPy reference every kernel is tested against; ``config.py`` holds the compiler flags.
"""
