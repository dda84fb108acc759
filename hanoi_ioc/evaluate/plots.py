"""PNG plots of a run: each panel's series, ground truth shaded, alerts marked (matplotlib).

One file per :class:`~hanoi_ioc.evaluate.panels.Panel`: the stored series as a line (local
Hanoi time on the axis), the rule thresholds of its quantity as dashed lines, every label
window shaded in its kind's colour; below it one row per alert rule, a bar for as long as
each alert stayed open (colour = its worst severity) starting at its raise, also marked as a
dot on the series; above it, for a flood hotspot, its upstream gauge's rain. Rendering uses
the Agg backend only (no display needed); figures are closed after saving so long runs do
not leak memory. Times are drawn as matplotlib date numbers of Hanoi local time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

import matplotlib as mpl

mpl.use("Agg")

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from contract import HANOI, QUANTITIES, Quantity, Station
from hanoi_ioc.evaluate.panels import Panel
from hanoi_ioc.evaluate.records import FloatArray, RunResult, Series
from processing.alerts import Severity
from processing.conditions.thresholds import DEFAULT_RULES

__all__ = ["KIND_COLOURS", "SEVERITY_COLOURS", "plot_panel", "plot_run"]

_MARGIN: Final = timedelta(hours=3)
KIND_COLOURS: Final[Mapping[str, str]] = {
    "flood": "#4a90d9",
    "heavy_rain": "#9ecae1",
    "oxygen_crash": "#d94a4a",
    "hypoxia": "#f4a582",
    "algal_bloom": "#7fbf7b",
    "pollution_episode": "#b07cc6",
    "traffic_incident": "#f2b134",
    "stuck": "#999999",
    "drift": "#c7b299",
    "spike": "#e7298a",
    "offline": "#636363",
    "dropout": "#bdbdbd",
}
"""Shading of each label kind."""
SEVERITY_COLOURS: Final[Mapping[Severity, str]] = {
    Severity.INFO: "#6baed6",
    Severity.MINOR: "#fdd835",
    Severity.MODERATE: "#fb8c00",
    Severity.SEVERE: "#e53935",
    Severity.EXTREME: "#6a1b9a",
}
"""Alert markers by (worst) severity."""


_DAY_S: Final = 86400.0


def _dates(times_s: FloatArray) -> FloatArray:
    """Epoch seconds as matplotlib date numbers (days since 1970, UTC)."""
    return np.asarray(times_s, dtype=np.float64) / _DAY_S


def _local(moment: datetime) -> float:
    return moment.timestamp() / _DAY_S


def _window(panel: Panel, run: RunResult) -> tuple[datetime, datetime]:
    """The span to show: the panel's labels and alerts with a margin, within the run."""
    moments = [x.start for x in panel.labels] + [x.end for x in panel.labels]
    moments += [a.raised_at for a in panel.alerts]
    if not moments:
        return run.start, run.end
    low, high = min(moments) - _MARGIN, max(moments) + _MARGIN
    return max(low, run.start), min(high, run.end)


def _title(panel: Panel, stations: Mapping[str, Station]) -> str:
    info = stations.get(panel.station_id)
    name = info.name if info else panel.station_id
    try:
        spec = QUANTITIES[Quantity(panel.quantity)]
        what = f"{spec.label_en} / {spec.label_vi} ({spec.unit})"
    except ValueError:
        what = panel.quantity
    return f"{name} [{panel.station_id}] — {what}"


def _shade(ax: Axes, panel: Panel, low: datetime, high: datetime) -> dict[str, str]:
    kinds: dict[str, str] = {}
    for label in panel.labels:
        if label.end < low or label.start > high:
            continue
        colour = KIND_COLOURS.get(label.kind, "#cccccc")
        end = label.end if label.end > label.start else label.start + timedelta(minutes=1)
        ax.axvspan(_local(label.start), _local(end), color=colour, alpha=0.25, lw=0)
        kinds[label.kind] = colour
    return kinds


def _alert_rows(
    ax: Axes, panel: Panel, series: Series | None, main: Axes, low: datetime, high: datetime
) -> dict[Severity, str]:
    """One row per alert rule: a bar while open, a triangle at the raise (severity colour)."""
    shown: dict[Severity, str] = {}
    rules = sorted({a.rule for a in panel.alerts if low <= a.raised_at <= high})
    for alert in panel.alerts:
        if alert.rule not in rules or not low <= alert.raised_at <= high:
            continue
        colour = SEVERITY_COLOURS[alert.severity]
        at = _local(alert.raised_at)
        row = rules.index(alert.rule)
        until = _local(min(alert.cleared_at or high, high))
        ax.plot([at, until], [row, row], color=colour, lw=5, solid_capstyle="butt", zorder=3)
        ax.plot([at], [row], marker=">", ms=6, color=colour, mec="black", mew=0.5, zorder=4)
        if series is not None and len(series):
            i = int(np.clip(np.searchsorted(series.times_s, alert.raised_at.timestamp()), 0,
                            len(series) - 1))  # fmt: skip
            main.plot([at], [series.values[i]], marker="o", ms=4.5, color=colour, mec="black",
                      mew=0.5, zorder=5)  # fmt: skip
        shown[alert.severity] = colour
    ax.set_yticks(range(len(rules)), rules, fontsize=7)
    ax.set_ylim(-0.7, max(len(rules), 1) - 0.3)
    if not rules:
        ax.set_yticks([0], ["no alert"], fontsize=7)
    return shown


def _thresholds(ax: Axes, quantity: str) -> None:
    for rule in DEFAULT_RULES:
        if rule.quantity.value != quantity:
            continue
        for level in rule.levels:
            ax.axhline(level.threshold, color="#555555", lw=0.6, ls="--", zorder=1)
            ax.annotate(f"{level.threshold:g}", (1.0, level.threshold), xycoords=("axes fraction",
                        "data"), xytext=(2, 0), textcoords="offset points", fontsize=6,
                        va="center", color="#555555", annotation_clip=False)  # fmt: skip


def _legend(fig: Figure, kinds: Mapping[str, str], severities: Mapping[Severity, str]) -> None:
    handles: list[Artist] = [Line2D([], [], color="#1f3b57", lw=1, label="stored readings")]
    handles += [Patch(color=c, alpha=0.35, label=f"truth: {k}") for k, c in sorted(kinds.items())]
    handles += [
        Patch(color=c, label=f"alert: {s.value}")
        for s, c in sorted(severities.items(), key=lambda item: item[0].rank)
    ]
    fig.legend(handles=handles, fontsize=7, loc="lower center", ncol=min(len(handles), 6),
               frameon=False)  # fmt: skip


def plot_panel(
    panel: Panel, run: RunResult, path: Path, series: Mapping[tuple[str, str], Series]
) -> Path:
    """Draw one panel to ``path`` (PNG) and return it."""
    low, high = _window(panel, run)
    rain = series.get(panel.companion) if panel.companion is not None else None
    rules = len({a.rule for a in panel.alerts if low <= a.raised_at <= high})
    heights = ([1.0] if rain is not None else []) + [3.2, 0.35 + 0.28 * max(rules, 1)]
    fig, axes = plt.subplots(
        len(heights), 1, sharex=True, figsize=(11.0, 1.2 + 1.05 * sum(heights)), dpi=110,
        gridspec_kw={"height_ratios": heights, "hspace": 0.08},
    )  # fmt: skip
    try:
        if rain is not None:
            top, main, rows = axes
            keep = (rain.times_s >= low.timestamp()) & (rain.times_s <= high.timestamp())
            top.bar(_dates(rain.times_s[keep]), rain.values[keep], width=1 / 1440,
                    color="#2b8cbe", zorder=2)  # fmt: skip
            top.set_ylabel(f"rain, mm\n{panel.companion[0] if panel.companion else ''}",
                           fontsize=7)  # fmt: skip
            top.tick_params(labelsize=7)
            top.grid(alpha=0.25)
        else:
            main, rows = axes
        data = series.get(panel.key)
        if data is not None and len(data):
            keep = (data.times_s >= low.timestamp()) & (data.times_s <= high.timestamp())
            main.plot(_dates(data.times_s[keep]), data.values[keep], lw=0.9, color="#1f3b57",
                      zorder=3)  # fmt: skip
        _thresholds(main, panel.quantity)
        kinds = _shade(main, panel, low, high)
        _shade(rows, panel, low, high)
        severities = _alert_rows(rows, panel, data, main, low, high)
        main.set_xlim(_local(low), _local(high))
        (axes[0]).set_title(_title(panel, run.stations), fontsize=9, loc="left")
        main.set_ylabel(_unit(panel.quantity), fontsize=7)
        main.tick_params(labelsize=7)
        main.grid(alpha=0.25)
        rows.xaxis.set_major_formatter(
            mdates.DateFormatter("%d/%m %H:%M", tz=HANOI)  # type: ignore[no-untyped-call]
        )
        rows.tick_params(axis="x", labelsize=7)
        rows.set_xlabel("Asia/Ho_Chi_Minh (giờ Hà Nội)", fontsize=7)
        rows.grid(axis="x", alpha=0.25)
        _legend(fig, kinds, severities)
        fig.subplots_adjust(left=0.11, right=0.96, top=0.93, bottom=0.09 + 0.25 / sum(heights))
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path


def _unit(quantity: str) -> str:
    try:
        return QUANTITIES[Quantity(quantity)].unit
    except ValueError:
        return ""


def plot_run(run: RunResult, panels: Sequence[Panel], directory: Path) -> list[Path]:
    """Draw every panel of a run into ``directory``; returns the files, in panel order."""
    return [
        plot_panel(panel, run, directory / f"{panel.station_id}__{panel.quantity}.png", run.series)
        for panel in panels
    ]
