"""Offline tools: the backtest over stored or CSV series, and reading those series.

The same detector code as the live service, strictly streaming (no look-ahead).
"""
