"""The bench report: a readable table, the JSON document and the plots.

The report is a plain JSON-ready ``dict`` (:data:`Report`); its sections are ``machine``,
``options``, ``bases``, ``pipeline`` (one entry per offered load), ``sustained``,
``memory_mb``, ``engine`` (one per registry size), ``fanout`` (one per client count) and
``skipped`` (what the time cap left out). Tables are Markdown, so they paste into the docs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["Report", "plot", "table", "write_json"]

Report = dict[str, Any]


def _n(value: object, digits: int = 0) -> str:
    if value is None:
        return "–"
    if isinstance(value, int | float):
        return f"{value:,.{digits}f}"
    return str(value)


def _md(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _lat(step: dict[str, Any], key: str) -> str:
    figures = step.get(key) or {}
    if not figures.get("n"):
        return "–"
    return f"{_n(figures['p50'])} / {_n(figures['p95'])} / {_n(figures['p99'])}"


def _pipeline(report: Report) -> list[str]:
    rows = []
    for s in report.get("pipeline", []):
        cpu = s.get("cpu_pct", {})
        rows.append((
            _n(s["offered"]), _n(s["load"].get("achieved_readings_s")), _n(s["stored_rate"]),
            _n(s["decided_rate"]), _n(s.get("undecided_at_publish_end")),
            _n(s.get("last_decision_after_s"), 1), _lat(s, "publish_to_commit_ms"),
            _lat(s, "publish_to_decision_ms"), _lat(s.get("alerts", {}), "publish_to_alert_ws_ms"),
            f"{s.get('alerts', {}).get('alerts_seen', 0)}/{s.get('alerts', {}).get('fired', 0)}",
            "/".join(_n(cpu.get(k)) for k in ("ingest", "processing", "api", "load", "broker",
                                               "postgres", "other", "stolen")),
        ))  # fmt: skip
    head = ("offered readings/s", "published/s", "stored/s", "decided/s",
            "undecided at publish end", "last decision after end s",
            "publish→commit p50/p95/p99 ms", "publish→decision p50/p95/p99 ms",
            "publish→alert on WS p50/p95/p99 ms", "alerts seen",
            "CPU % ingest/proc/api/load/broker/pg/other/stolen")  # fmt: skip
    return _md(head, rows)


def _cpu_table(report: Report) -> list[str]:
    names = ("ingest", "processing", "api", "load", "broker", "postgres", "bench")
    rows = [(_n(s["offered"]), *(_n(s.get("cpu_us_per_reading", {}).get(k), 1) for k in names))
            for s in report.get("pipeline", [])]  # fmt: skip
    return _md(("offered readings/s", *names), rows)


def table(report: Report) -> str:
    """The whole report as Markdown tables."""
    m = report.get("machine", {})
    out = [f"# hanoi-ioc bench ({report.get('preset')}), {report.get('started_at')}",
           f"machine: {m.get('nproc')} CPUs, {m.get('cpu_model')}, {m.get('ram_gib')} GiB RAM, "
           f"load average at start {m.get('loadavg_1m_at_start')}", ""]  # fmt: skip
    bases = report.get("bases", {})
    broker, copy = bases.get("broker", {}), bases.get("copy", {})
    out += ["## Bases", *_md(("base", "rate", "detail"), [
        ("broker publish→subscribe, QoS 1", f"{_n(broker.get('messages_s'))} msgs/s = "
         f"{_n(broker.get('readings_s'))} readings/s", f"{_n(broker.get('received'))} received"),
        ("PostgreSQL COPY, unindexed", f"{_n(copy.get('rows_s'))} rows/s",
         f"{_n(copy.get('rows'))} rows"),
    ]), ""]  # fmt: skip
    out += ["## Pipeline (ingest + processing + API)", *_pipeline(report), ""]
    out += ["Probe readings only (their own client: no load generator queue in them):",
            *_md(("offered readings/s", "publish→commit p50/p95/p99 ms",
                  "publish→decision p50/p95/p99 ms", "publish→alert on WS p50/p95/p99 ms"),
                 [(_n(s["offered"]), _lat(s, "probe_publish_to_commit_ms"),
                   _lat(s, "probe_publish_to_decision_ms"),
                   _lat(s.get("alerts", {}), "publish_to_alert_ws_ms"))
                  for s in report.get("pipeline", [])]), ""]  # fmt: skip
    out += ["CPU µs per reading stored, by process:", *_cpu_table(report), ""]
    sustained = report.get("sustained", {})
    out += [f"sustained end to end: {_n(sustained.get('readings_s'))} readings/s "
            f"(highest offered load kept up with: {_n(sustained.get('offered'))}); ceiling seen "
            f"{_n(sustained.get('ceiling_readings_s'))} decided/s; ratio vs broker base "
            f"{_n(sustained.get('vs_broker'), 2)}, vs COPY base {_n(sustained.get('vs_copy'), 2)}",
            ""]  # fmt: skip
    mem = report.get("memory_mb", {})
    out += ["## Peak memory (MB, VmHWM)", *_md(list(mem), [[_n(v) for v in mem.values()]]), ""]
    out += ["## Processing engine by registry size", *_md(
        ("sensors", "readings per batch", "ms per batch p50 / max (CPU p50)",
         "µs CPU per reading",
         "readings/s on one core", "engine MB (adopted / peak)", "peak RSS MB"),
        [(_n(e["sensors"]), _n(e["batch"]), f"{_n(e['ms_per_batch_p50'], 1)} / "
          f"{_n(e['ms_per_batch_max'], 1)} ({_n(e.get('cpu_ms_per_batch_p50'), 1)})",
          _n(e["us_per_reading"], 2),
          _n(e["readings_s_one_core"]), f"{_n(e['engine_mb'], 1)} / {_n(e['engine_peak_mb'], 1)}",
          _n(e["peak_rss_mb"], 1)) for e in report.get("engine", [])]), ""]  # fmt: skip
    out += ["## WebSocket fan-out of one alert event", *_md(
        ("clients", "events", "delivered", "lost", "delivery p50/p95/p99 ms",
         "to every client p50 / max ms"),
        [(_n(f["clients"]), _n(f.get("events")), _n(f.get("delivered")), _n(f.get("lost")),
          _lat(f, "delivery_ms"), f"{_n((f.get('to_all_clients_ms') or {}).get('p50'))} / "
          f"{_n((f.get('to_all_clients_ms') or {}).get('max'))}")
         for f in report.get("fanout", [])]), ""]  # fmt: skip
    if report.get("skipped"):
        out += ["skipped (time cap): " + "; ".join(report["skipped"]), ""]
    out.append(f"elapsed: {_n(report.get('elapsed_s'))} s")
    return "\n".join(out)


def write_json(report: Report, path: Path) -> None:
    """Write the report as indented JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1, default=str) + "\n", encoding="utf-8")


def plot(report: Report, directory: Path) -> list[Path]:
    """Draw latency against load, throughput against load and scaling; returns the files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    steps = report.get("pipeline", [])
    written = []
    fig, ax = plt.subplots(figsize=(7, 4.5))
    loads = [s["offered"] for s in steps]
    for key, label, source, color in (
        ("publish_to_commit_ms", "publish→commit", None, "C0"),
        ("publish_to_decision_ms", "publish→decision", None, "C1"),
        ("publish_to_alert_ws_ms", "publish→alert on WebSocket", "alerts", "C3"),
    ):
        for pct, style in (("p50", "--"), ("p99", "-")):
            points = [(x, (s.get(source, {}) if source else s).get(key, {}).get(pct))
                      for x, s in zip(loads, steps, strict=True)]  # fmt: skip
            xs = [x for x, y in points if y]
            ys = [y for _, y in points if y]
            if xs:
                ax.plot(xs, ys, style, color=color, marker="o", label=f"{label} {pct}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("offered load, readings/s")
    ax.set_ylabel("latency, ms")
    ax.set_title("Latency against load")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    written.append(_save(fig, directory / "latency_vs_load.png"))

    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(loads, loads, ":", color="grey", label="offered")
    ax.plot(loads, [s["stored_rate"] for s in steps], marker="o", label="stored (ingest)")
    ax.plot(loads, [s["decided_rate"] for s in steps], marker="o", label="decided (processing)")
    bases = report.get("bases", {})
    if bases.get("broker", {}).get("readings_s"):
        ax.axhline(bases["broker"]["readings_s"], color="C3", ls="--", label="broker base")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("offered load, readings/s")
    ax.set_ylabel("readings/s")
    ax.set_title("Throughput against load")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    written.append(_save(fig, directory / "throughput_vs_load.png"))

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    engine = report.get("engine", [])
    sizes = [e["sensors"] for e in engine]
    left.plot(sizes, [e["us_per_reading"] for e in engine], marker="o", color="C0")
    left.set_xscale("log")
    left.set_xlabel("sensors")
    left.set_ylabel("µs CPU per reading", color="C0")
    twin = left.twinx()
    twin.plot(sizes, [e["peak_rss_mb"] for e in engine], marker="s", color="C1")
    twin.set_ylabel("peak RSS, MB", color="C1")
    left.set_title("Processing engine by registry size")
    fan = [f for f in report.get("fanout", []) if "delivery_ms" in f]
    counts = [f["clients"] for f in fan]
    for key, label in (
        ("delivery_ms", "delivery p99"),
        ("to_all_clients_ms", "to every client max"),
    ):
        pick = "p99" if key == "delivery_ms" else "max"
        right.plot(counts, [f[key].get(pick, 0) for f in fan], marker="o", label=label)
    right.set_xscale("log")
    right.set_xlabel("WebSocket clients")
    right.set_ylabel("ms")
    right.set_title("Alert fan-out")
    right.legend(fontsize=7)
    written.append(_save(fig, directory / "scaling.png"))
    return written


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
