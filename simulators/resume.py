"""Resuming a scenario run where it stopped: the run's anchor and mark in a small state file.

A scenario's story is laid out from its start (the *anchor*: ``now-6h`` for ``demo``), so a
run started again with a new anchor tells the same story again at other times: the same
flood, raised again as a new event. With a resume file the simulator keeps the anchor of
the first run and the *mark* — every item of the stream before it was acknowledged by the
broker — and a later run of the same scenario, seed, topic root and stations goes on from
the mark on the same anchor: nothing already delivered is published again (an item at the
mark itself may be, and ingest stores it once), the story is not told twice, and the gap
while it was stopped is caught up at the run's speed, so the stations' newest readings move
at once.

The file is JSON, written atomically (a temporary file renamed over it) every progress
report and at the end of the run. A file of another run (other scenario, seed, root or
stations), or one that cannot be read, is set aside with a warning and the run starts
afresh. The stream's suffix from the mark is :func:`simulators.generator.generate`'s
``resume_at``.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["ResumePoint", "RunIdentity", "load_point", "save_point"]

logger = logging.getLogger(__name__)

_VERSION = 1


@dataclass(frozen=True, slots=True)
class RunIdentity:
    """What makes two runs the same story.

    Args:
        scenario: the scenario's name (or path) as given.
        seed: the seed.
        topic_root: the topic root.
        stations: the station patterns selected (empty: the whole fleet).
    """

    scenario: str
    seed: int
    topic_root: str
    stations: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ResumePoint:
    """Where a run stands.

    Args:
        identity: the run.
        start: the anchor: the scenario's simulated start in the first run (tz-aware).
        reached: every item before it was acknowledged (tz-aware).
    """

    identity: RunIdentity
    start: datetime
    reached: datetime


def save_point(path: Path, point: ResumePoint) -> None:
    """Write ``point`` to ``path`` atomically.

    Raises:
        OSError: when the file cannot be written.
    """
    document = {
        "version": _VERSION,
        "scenario": point.identity.scenario,
        "seed": point.identity.seed,
        "topic_root": point.identity.topic_root,
        "stations": list(point.identity.stations),
        "start": point.start.astimezone(UTC).isoformat(),
        "reached": point.reached.astimezone(UTC).isoformat(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(path.name + ".tmp")
    scratch.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    os.replace(scratch, path)


def load_point(path: Path, identity: RunIdentity) -> ResumePoint | None:
    """The point of ``identity``'s run stored in ``path``; None to start afresh."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        logger.warning("resume file %s not readable (%s); starting afresh", path, exc)
        return None
    try:
        if document["version"] != _VERSION:
            msg = f"version {document['version']!r}, expected {_VERSION}"
            raise ValueError(msg)
        stored = RunIdentity(
            str(document["scenario"]),
            int(document["seed"]),
            str(document["topic_root"]),
            tuple(str(p) for p in document["stations"]),
        )
        point = ResumePoint(
            stored,
            _aware(datetime.fromisoformat(str(document["start"]))),
            _aware(datetime.fromisoformat(str(document["reached"]))),
        )
    except (KeyError, TypeError, ValueError) as exc:
        logger.warning("resume file %s is not a resume point (%s); starting afresh", path, exc)
        return None
    if stored != identity:
        logger.warning("resume file %s belongs to another run (%s); starting afresh", path, stored)
        return None
    return point


def _aware(moment: datetime) -> datetime:
    if moment.utcoffset() is None:
        msg = f"{moment.isoformat()} has no UTC offset"
        raise ValueError(msg)
    return moment.astimezone(UTC)
