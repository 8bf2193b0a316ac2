"""Product models: sensors in physical units, how they respond to load and ambient, and the
failure modes whose degradation moves them.

Every sensor follows one steady-state law, evaluated by the vectorised fleet physics::

    running:  value = run0 + load_slope * L + amb_slope * ambient + sum(effect_m * d_m)
    stopped:  value = idle + amb_slope * ambient

where ``L`` in [0, 1] is the operating load and ``d_m`` in [0, 1] the damage of failure mode
``m``.  Thermal sensors (``tau_s > 0``) approach that value with a first-order lag.  Alarm
levels are the fixed nameplate / standard limits the threshold baseline uses (for vibration
ISO 10816-3, zone C/D boundary for flexibly mounted machines, 7.1 mm/s).

>>> pm = CATALOG["PMP-200"]
>>> pm.category, len(pm.sensors), pm.sensor_index("vibration_rms")
('pump', 11, 6)
>>> [fm.mode for fm in pm.failure_modes]
['bearing_wear', 'seal_leak', 'fouling', 'electrical', 'sudden']
>>> pm.condition_sensors
['load_pct', 'ambient_temp', 'speed_rpm', 'suction_pressure']
>>> all(8 <= len(m.sensors) <= 16 for m in CATALOG.values())
True
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ISO_10816_ZONE_D_MM_S = 7.1

MODES = ("bearing_wear", "seal_leak", "fouling", "electrical", "sudden")


@dataclass(frozen=True)
class Sensor:
    name: str
    unit: str
    lo: float  # physically plausible range (the contract's min/max)
    hi: float
    nominal: float  # typical value in service (load 0.75, ambient 20 degC)
    alarm_hi: float | None = None  # fixed nameplate / standard alarm levels
    alarm_lo: float | None = None
    # physics
    idle: float = 0.0
    run0: float = 0.0
    load_slope: float = 0.0
    amb_slope: float = 0.0
    noise_sd: float = 0.0
    tau_s: float = 0.0  # first-order thermal lag (0 = instantaneous)


@dataclass(frozen=True)
class FailureMode:
    mode: str
    sensors: tuple[str, ...]  # sensors the mechanism moves (empty: no precursor)
    predictable: bool
    mttr_h: float  # nominal repair time on site
    description: str = ""
    effects: dict[str, float] = field(default_factory=dict)  # sensor -> shift at damage 1
    onset_per_year: float = 0.2  # base hazard of a degradation starting (new asset, nominal load)
    ttf_median_h: float = 240.0  # onset to failure at nominal load
    ttf_sigma: float = 0.45  # lognormal spread of that time between assets
    shape: float = 1.0  # damage = progress ** shape (> 1: accelerating)
    alarm_sensor: str | None = None  # the sensor whose fixed alarm stands for this mode
    spike_sensors: tuple[str, ...] = ()  # effects on these come as intermittent spikes


@dataclass(frozen=True)
class ProductModel:
    model_id: str
    name: str
    category: str
    sensors: list[Sensor]
    failure_modes: list[FailureMode]
    repair_factor: float = 1.0  # model-specific multiplier on repair time

    @property
    def sensor_names(self) -> list[str]:
        return [s.name for s in self.sensors]

    def sensor_index(self, name: str) -> int:
        for i, s in enumerate(self.sensors):
            if s.name == name:
                return i
        raise KeyError(f"{self.model_id} has no sensor {name!r}")

    def mode(self, mode: str) -> FailureMode:
        for fm in self.failure_modes:
            if fm.mode == mode:
                return fm
        raise KeyError(f"{self.model_id} has no failure mode {mode!r}")

    @property
    def condition_sensors(self) -> list[str]:
        """Sensors no failure mode moves (load, ambient, speed...): regime inputs."""
        moved = {s for fm in self.failure_modes for s in fm.sensors}
        return [s.name for s in self.sensors if s.name not in moved]

    def effect_matrix(self) -> np.ndarray:
        """float32[n_modes, n_sensors]: sensor shift at damage 1 per mode."""
        out = np.zeros((len(self.failure_modes), len(self.sensors)), np.float32)
        for m, fm in enumerate(self.failure_modes):
            for name, delta in fm.effects.items():
                out[m, self.sensor_index(name)] = delta
        return out

    def sensor_param(self, attr: str) -> np.ndarray:
        return np.array([getattr(s, attr) for s in self.sensors], np.float32)


def _modes(
    category: str,
    *,
    bearing: dict[str, float],
    seal: dict[str, float],
    fouling: dict[str, float],
    electrical: dict[str, float],
    seal_desc: str,
    fouling_desc: str,
    current: str,
    current_sensor: str,
    mttr: dict[str, float],
    alarms: dict[str, str],
) -> list[FailureMode]:
    def fm(mode, effects, desc, **kw):
        moved = tuple(effects)
        return FailureMode(mode, moved, True, mttr[mode], desc, dict(effects),
                           alarm_sensor=alarms.get(mode), **kw)

    return [
        fm("bearing_wear", bearing, f"{category} bearing wear: vibration and bearing temperature "
           "rise, accelerating towards seizure", onset_per_year=0.2, ttf_median_h=300,
           ttf_sigma=0.45, shape=4.0),
        fm("seal_leak", seal, seal_desc, onset_per_year=0.15, ttf_median_h=200, ttf_sigma=0.5,
           shape=1.6),
        fm("fouling", fouling, fouling_desc, onset_per_year=0.2, ttf_median_h=700,
           ttf_sigma=0.4, shape=1.2),
        # electrical: `effects` on the current sensor are the size of the intermittent spikes
        # (the fleet physics turns them into spikes whose rate and size grow with damage)
        fm("electrical", electrical, f"{category} motor insulation / connection fault: "
           f"intermittent {current} spikes and voltage dips, growing in rate and size",
           onset_per_year=0.1, ttf_median_h=160, ttf_sigma=0.5, shape=1.5,
           spike_sensors=(current_sensor, "voltage")),
        FailureMode("sudden", (), False, mttr["sudden"],
                    f"{category} sudden failure (shaft / coupling break, control board): "
                    "no precursor", {}, onset_per_year=0.05),
    ]


def _common(max_rpm: float, run0_rpm: float) -> list[Sensor]:
    return [
        Sensor("load_pct", "%", 0, 120, 75, idle=0, run0=0, load_slope=100, noise_sd=0.6),
        Sensor("ambient_temp", "degC", -40, 60, 20, amb_slope=1.0, noise_sd=0.15),
        Sensor("speed_rpm", "rpm", 0, max_rpm * 1.1, run0_rpm + 0.75 * (max_rpm - run0_rpm),
               idle=0, run0=run0_rpm, load_slope=max_rpm - run0_rpm, noise_sd=4),
    ]


PUMP = ProductModel(
    "PMP-200", "Centrifugal process pump 200 mm", "pump",
    _common(2950, 1200) + [
        Sensor("suction_pressure", "bar", -1, 10, 1.08, idle=1.5, run0=1.3, load_slope=-0.3,
               noise_sd=0.04),
        Sensor("discharge_pressure", "bar", 0, 25, 10.0, alarm_lo=5.0, idle=1.5, run0=4.0,
               load_slope=8.0, noise_sd=0.1),
        Sensor("flow_rate", "m3/h", 0, 300, 160, alarm_lo=70, idle=0, run0=40, load_slope=160,
               noise_sd=2.5),
        Sensor("vibration_rms", "mm/s", 0, 50, 1.95, alarm_hi=ISO_10816_ZONE_D_MM_S, idle=0.08,
               run0=1.2, load_slope=1.0, noise_sd=0.1),
        Sensor("bearing_temp", "degC", -40, 160, 50, alarm_hi=90, idle=0, run0=15,
               load_slope=20, amb_slope=1.0, noise_sd=0.25, tau_s=1800),
        Sensor("motor_temp", "degC", -40, 180, 66, alarm_hi=120, idle=0, run0=20,
               load_slope=35, amb_slope=1.0, noise_sd=0.3, tau_s=2400),
        Sensor("motor_current", "A", 0, 200, 49.5, alarm_hi=66, idle=0.3, run0=18,
               load_slope=42, noise_sd=0.5),
        Sensor("voltage", "V", 0, 480, 397, alarm_lo=360, idle=400, run0=400, load_slope=-4,
               noise_sd=1.5),
    ],
    _modes(
        "pump",
        bearing={"vibration_rms": 6.5, "bearing_temp": 32.0, "motor_current": 2.0},
        seal={"discharge_pressure": -4.0, "flow_rate": -55.0, "motor_current": -3.0},
        fouling={"flow_rate": -45.0, "motor_current": 14.0, "motor_temp": 22.0,
                 "vibration_rms": 0.6},
        electrical={"motor_current": 45.0, "voltage": -25.0, "motor_temp": 10.0},
        seal_desc="pump mechanical seal leak: discharge pressure and flow fall",
        fouling_desc="impeller / strainer fouling: flow falls, motor current and temperature rise",
        current="motor current", current_sensor="motor_current",
        mttr={"bearing_wear": 8, "seal_leak": 5, "fouling": 4, "electrical": 6, "sudden": 10},
        alarms={"bearing_wear": "vibration_rms", "seal_leak": "flow_rate",
                "fouling": "motor_temp", "electrical": "motor_current"},
    ),
)

COMPRESSOR = ProductModel(
    "CMP-75", "Oil-injected screw compressor 75 kW", "compressor",
    _common(3000, 1500) + [
        Sensor("discharge_pressure", "bar", 0, 16, 7.6, alarm_lo=5.0, idle=1.0, run0=6.5,
               load_slope=1.5, noise_sd=0.05),
        Sensor("air_flow", "m3/min", 0, 20, 9.5, alarm_lo=4.0, idle=0, run0=2.0, load_slope=10,
               noise_sd=0.15),
        Sensor("discharge_temp", "degC", -40, 150, 94, alarm_hi=110, idle=0, run0=55,
               load_slope=25, amb_slope=1.0, noise_sd=0.4, tau_s=600),
        Sensor("oil_temp", "degC", -40, 140, 71, alarm_hi=95, idle=0, run0=40, load_slope=15,
               amb_slope=1.0, noise_sd=0.3, tau_s=1200),
        Sensor("oil_pressure", "bar", 0, 10, 3.9, alarm_lo=2.5, idle=0, run0=3.5,
               load_slope=0.5, noise_sd=0.04),
        Sensor("vibration_rms", "mm/s", 0, 50, 2.6, alarm_hi=ISO_10816_ZONE_D_MM_S, idle=0.1,
               run0=1.5, load_slope=1.5, noise_sd=0.12),
        Sensor("bearing_temp", "degC", -40, 160, 59, alarm_hi=95, idle=0, run0=20,
               load_slope=25, amb_slope=1.0, noise_sd=0.25, tau_s=1800),
        Sensor("motor_current", "A", 0, 300, 127, alarm_hi=165, idle=0.5, run0=60,
               load_slope=90, noise_sd=1.0),
        Sensor("voltage", "V", 0, 480, 396, alarm_lo=360, idle=400, run0=400, load_slope=-5,
               noise_sd=1.5),
    ],
    _modes(
        "compressor",
        bearing={"vibration_rms": 6.0, "bearing_temp": 30.0, "oil_pressure": -0.6},
        seal={"discharge_pressure": -2.2, "air_flow": -4.0, "discharge_temp": 8.0},
        fouling={"discharge_temp": 26.0, "oil_temp": 20.0, "motor_current": 18.0},
        electrical={"motor_current": 120.0, "voltage": -30.0},
        seal_desc="compressor valve / shaft seal leak: discharge pressure and delivered air fall",
        fouling_desc="oil cooler fouling: discharge and oil temperatures and current rise",
        current="motor current", current_sensor="motor_current",
        mttr={"bearing_wear": 12, "seal_leak": 6, "fouling": 5, "electrical": 8, "sudden": 14},
        alarms={"bearing_wear": "vibration_rms", "seal_leak": "air_flow",
                "fouling": "discharge_temp", "electrical": "motor_current"},
    ),
    repair_factor=1.2,
)

CHILLER = ProductModel(
    "CHL-500", "Water-cooled screw chiller 500 kW", "chiller",
    _common(3600, 2000) + [
        Sensor("chw_supply_temp", "degC", -5, 30, 7.4, alarm_hi=10, idle=12, run0=7.0,
               load_slope=0.5, noise_sd=0.08),
        Sensor("chw_return_temp", "degC", -5, 35, 10.8, idle=12, run0=7.0, load_slope=5.0,
               noise_sd=0.1),
        Sensor("cw_supply_temp", "degC", -5, 45, 25, idle=10, run0=15, amb_slope=0.5,
               noise_sd=0.15, tau_s=3600),
        Sensor("condenser_pressure", "bar", 0, 25, 11.7, alarm_hi=15.5, idle=5, run0=7.0,
               load_slope=3.0, amb_slope=0.12, noise_sd=0.08),
        Sensor("evaporator_pressure", "bar", 0, 10, 3.4, alarm_lo=2.4, idle=4.5, run0=3.6,
               load_slope=-0.3, noise_sd=0.04),
        Sensor("compressor_current", "A", 0, 700, 330, alarm_hi=440, idle=1.0, run0=120,
               load_slope=280, noise_sd=2.5),
        Sensor("voltage", "V", 0, 480, 396, alarm_lo=360, idle=400, run0=400, load_slope=-5,
               noise_sd=1.5),
        Sensor("vibration_rms", "mm/s", 0, 50, 1.9, alarm_hi=ISO_10816_ZONE_D_MM_S, idle=0.05,
               run0=1.0, load_slope=1.2, noise_sd=0.08),
        # indoors (plant room): a stopped chiller cools to room temperature, not to outdoor
        Sensor("bearing_temp", "degC", -40, 160, 52, alarm_hi=85, idle=14, run0=35,
               load_slope=15, amb_slope=0.3, noise_sd=0.25, tau_s=1800),
        Sensor("oil_temp", "degC", -40, 140, 53, alarm_hi=75, idle=14, run0=40, load_slope=10,
               amb_slope=0.3, noise_sd=0.2, tau_s=1200),
        Sensor("chw_flow", "m3/h", 0, 200, 86, idle=0, run0=86, noise_sd=1.0),
    ],
    _modes(
        "chiller",
        bearing={"vibration_rms": 6.4, "bearing_temp": 28.0, "oil_temp": 8.0},
        seal={"evaporator_pressure": -1.3, "chw_supply_temp": 3.0, "chw_return_temp": 2.5,
              "compressor_current": -40.0},
        fouling={"condenser_pressure": 4.5, "compressor_current": 60.0, "oil_temp": 6.0},
        electrical={"compressor_current": 260.0, "voltage": -30.0},
        seal_desc="refrigerant leak: evaporator pressure falls, chilled water supply warms",
        fouling_desc="condenser tube fouling: condenser pressure and compressor current rise",
        current="compressor current", current_sensor="compressor_current",
        mttr={"bearing_wear": 16, "seal_leak": 10, "fouling": 6, "electrical": 10, "sudden": 18},
        alarms={"bearing_wear": "vibration_rms", "seal_leak": "evaporator_pressure",
                "fouling": "condenser_pressure", "electrical": "compressor_current"},
    ),
    repair_factor=1.5,
)

CATALOG: dict[str, ProductModel] = {pm.model_id: pm for pm in (PUMP, COMPRESSOR, CHILLER)}
