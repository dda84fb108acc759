"""Versioned SQL migrations, every one of the project (package data read by :mod:`db.migrate`)."""
