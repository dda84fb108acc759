"""The simulators' small exception tree."""

__all__ = ["DeviceGaveUpError", "ScenarioError", "SimulatorError"]


class SimulatorError(Exception):
    """Base class of everything the simulators raise on purpose."""


class ScenarioError(SimulatorError):
    """A scenario file that cannot be loaded or does not make sense."""


class DeviceGaveUpError(SimulatorError):
    """A simulated device could not (re)connect within its give-up policy."""
