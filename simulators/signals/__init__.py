"""Pure numpy signal models, one module per domain (no I/O, no MQTT, no clocks).

- :mod:`~simulators.signals.cycles`: calendar, sun and climatology shapes for Hanoi;
- :mod:`~simulators.signals.noise`: sensor noise as instruments make it: AR(1) correlated
  noise, heavy tails, resolution, missed counts, service visits that leave a new normal;
- :mod:`~simulators.signals.weather`: city temperature, humidity, cloud, rain storms, PM stagnation;
- :mod:`~simulators.signals.air`, :mod:`~simulators.signals.water`,
  :mod:`~simulators.signals.flood`, :mod:`~simulators.signals.traffic`: the stations.

Every model is a small stateful object advanced chunk by chunk in time order, given its
own ``numpy.random.Generator``, so a run is reproducible from one seed.
"""

from simulators.signals.air import AirDrivers, AirStationModel
from simulators.signals.flood import FloodDepthModel, RainGaugeModel
from simulators.signals.noise import AR1, Maintenance, quantise, student_t, zero_inflate
from simulators.signals.traffic import TrafficDetectorModel, corridor_activity
from simulators.signals.water import BuoyModel, LakeDrivers, do_saturation
from simulators.signals.weather import CityWeather, WeatherFrame

__all__ = [
    "AR1",
    "AirDrivers",
    "AirStationModel",
    "BuoyModel",
    "CityWeather",
    "FloodDepthModel",
    "LakeDrivers",
    "Maintenance",
    "RainGaugeModel",
    "TrafficDetectorModel",
    "WeatherFrame",
    "corridor_activity",
    "do_saturation",
    "quantise",
    "student_t",
    "zero_inflate",
]
