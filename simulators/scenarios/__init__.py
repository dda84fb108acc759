"""Bundled scenario files (``*.yaml``); load them with ``simulators.scenario.load_scenario``."""
