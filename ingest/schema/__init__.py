"""Versioned SQL migrations (package data read by :mod:`ingest.storage`)."""
