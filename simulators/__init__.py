"""Simulators: a realistic Hanoi sensor fleet publishing over MQTT with labelled ground truth."""
