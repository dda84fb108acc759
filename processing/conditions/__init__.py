"""Condition sources: every alert rule family behind one interface (see :mod:`.base`)."""
