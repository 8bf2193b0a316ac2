"""Where the simulated fleet is: site coordinates by region, and the regions' centres.

Sites are scattered around their region's centre (a 5-region area about 300 km across, central
Europe); the positions come from their own random stream (seed, ``STREAM``), so placing sites does
not change any other draw of the fleet.

>>> xy = place_sites(["a", "b"], ["north", "south"], seed=0)
>>> xy["a"][0] > xy["b"][0]           # north of south
True
"""

from __future__ import annotations

import numpy as np

CENTRE = (51.0, 10.0)
REGION_CENTRES = {"north": (52.3, 10.0), "south": (49.7, 10.0), "east": (51.0, 12.1),
                  "west": (51.0, 7.9), "central": (51.0, 10.0)}
SPREAD_DEG = (0.2, 0.3)           # sd of latitude, longitude around the region centre (~22 km)
STREAM = 7040


def place_sites(site_ids: list[str], regions: list[str], seed: int) -> dict[str, tuple[float, float]]:
    rng = np.random.default_rng([seed, STREAM])
    out = {}
    for sid, region in zip(site_ids, regions):
        lat0, lon0 = REGION_CENTRES.get(region, CENTRE)
        out[sid] = (round(float(lat0 + rng.normal(0, SPREAD_DEG[0])), 5),
                    round(float(lon0 + rng.normal(0, SPREAD_DEG[1])), 5))
    return out
