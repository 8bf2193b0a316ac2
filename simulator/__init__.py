"""Simulated fleet of connected products: the ground truth everything else is judged on.

* :mod:`simulator.catalog`: product models (pump, compressor, chiller), sensors in physical
  units, failure modes and how their degradation moves the sensors;
* :mod:`simulator.fleet`: ``Fleet(FleetSpec(...))``: vectorised physics (duty cycles, ambient,
  degradation with hazards depending on age, load and maintenance, failures, repairs,
  preventive and predictive maintenance, sensor faults) and the ground-truth log;
* :mod:`simulator.technicians`: the field technicians per region, their skill levels and
  what they record on a repair;
* :mod:`simulator.ground_truth`: the JSON Lines log of what really happened;
* :mod:`simulator.register`: the installed base and devices in the database;
* :mod:`simulator.backfill` (+ :mod:`simulator.copy_binary`): months of history straight into
  TimescaleDB;
* :mod:`simulator.runner`: live publishing over MQTT on an accelerated simulated clock, with
  technicians acting on orders; :mod:`simulator.misbehave`: misbehaving devices;
* :mod:`simulator.scoring`: orders scored against the ground truth, fixed-threshold baseline;
* :mod:`simulator.cli`: ``prognos simulate register|backfill|run|score``.
"""
