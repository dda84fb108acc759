"""Operations alerts: the system's own health, for the operations centre's on-call engineer.

Not about a station: the subject names no station, the category is ``operations``, and
these alerts never leave the operations centre. Judged on wall-clock time (they are about
now, not about measurements).

- ``storage_job:<job>`` (moderate): a TimescaleDB policy job (aggregate refresh, compression,
  retention) whose work has not been done for three of its intervals — neither the
  background scheduler nor the ingest upkeep ran it; charts go stale or the disk fills.
- ``storage_job:scheduler`` (minor): the background scheduler's last run of a job failed
  while the upkeep still does the work (known on PostgreSQL 15.20: ``cannot drop portal``);
  nothing is lost, but the database administrator should know.
- ``processing_lag:feed`` (moderate): stored readings wait longer than the configured bound
  to be decided — alerts come late; severe when batches were pruned from the feed before
  processing read them (their readings will never be decided: counted, not silent).

>>> from datetime import UTC, datetime
>>> from db.timescale import JobHealth
>>> stuck = JobHealth(1002, "policy_refresh_continuous_aggregate", "readings_1m", True, 60.0,
...                   "Failed", None, 9, 9, 600.0)
>>> [(c.dedup_key, c.severity.value) for c in
...  OperationsWatch().storage_jobs([stuck], datetime(2026, 12, 7, tzinfo=UTC), set())]
[('storage_job:1002', 'moderate')]
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Final

from contract import hanoi_time
from db.feed import FeedLag
from db.timescale import JobHealth
from processing.alerts import Severity
from processing.alerts.wording import number_vi
from processing.conditions.base import Condition, RuleSpec, Subject

__all__ = ["PROCESSING_LAG_RULE", "STORAGE_JOB_RULE", "OperationsWatch"]

STORAGE_JOB_RULE: Final = "storage_job"
PROCESSING_LAG_RULE: Final = "processing_lag"
_LAG_KEY: Final = f"{PROCESSING_LAG_RULE}:feed"
_SYSTEM: Final = Subject(None)
_SCHEDULER_KEY: Final = f"{STORAGE_JOB_RULE}:scheduler"


class OperationsWatch:
    """Turns the storage jobs' health into operations conditions."""

    rules: Final = (
        RuleSpec(STORAGE_JOB_RULE, "operations", "Tác vụ lưu trữ không chạy",
                 "Storage job not running"),
        RuleSpec(PROCESSING_LAG_RULE, "operations", "Xử lý chậm", "Processing behind"),
    )  # fmt: skip

    def processing_lag(
        self, lag: FeedLag, bound_s: float, now: datetime, watched: Collection[str]
    ) -> list[Condition]:
        """Processing behind the feed by more than ``bound_s``, or readings lost to a gap."""
        if lag.gap == 0 and lag.seconds <= bound_s:
            return [self._normal(_LAG_KEY, lag.seconds, now)] if _LAG_KEY in watched else []
        local = hanoi_time(now)
        if lag.gap:
            severity = Severity.SEVERE
            vi = (
                f"{lag.gap} lô số liệu đã bị xoá khỏi hàng đợi trước khi được xử lý: các số đo "
                "đó sẽ không bao giờ được đánh giá. "
            )
            en = (
                f"{lag.gap} feed batch(es) were pruned before processing read them: those "
                "readings will never be judged. "
            )
        else:
            severity, vi, en = Severity.MODERATE, "", ""
        texts = (
            f"Xử lý chậm {lag.seconds:.0f} s",
            f"Processing {lag.seconds:.0f} s behind",
            f"{vi}Lúc {local} (giờ Hà Nội) còn {lag.readings} số đo đã lưu chưa được xử lý, "
            f"cũ nhất {lag.seconds:.0f} s (ngưỡng {bound_s:.0f} s): cảnh báo sẽ đến muộn. "
            "Kiểm tra dịch vụ processing và tải của máy.",
            f"{en}At {local} (Hanoi time) {lag.readings} stored readings wait to be decided, "
            f"the oldest for {lag.seconds:.0f} s (bound {bound_s:.0f} s): alerts come late. "
            "Check the processing service and the machine's load.",
        )
        details: dict[str, str | float | int | bool | None] = {
            "lag_readings": lag.readings, "lag_s": round(lag.seconds, 1),
            "feed_head": lag.head, "position": lag.position, "gap_batches": lag.gap,
        }  # fmt: skip
        return [
            Condition(
                _LAG_KEY, PROCESSING_LAG_RULE, "operations", _SYSTEM, now,
                round(lag.seconds, 1), severity, False, bound_s, texts,
                f"{PROCESSING_LAG_RULE}:system", details, clear_after=1,
            )
        ]  # fmt: skip

    def storage_jobs(
        self, jobs: Sequence[JobHealth], now: datetime, watched: Collection[str]
    ) -> list[Condition]:
        """One condition per stuck job, one for a failing scheduler, normal ones to clear."""
        out: list[Condition] = []
        for job in jobs:
            key = f"{STORAGE_JOB_RULE}:{job.job_id}"
            if job.is_overdue:
                out.append(self._stuck(key, job, now))
            elif key in watched:
                out.append(self._normal(key, job.lag_s, now))
        failing = [j for j in jobs if j.is_failing and not j.is_overdue]
        if failing:
            out.append(self._scheduler(failing, now))
        elif _SCHEDULER_KEY in watched:
            out.append(self._normal(_SCHEDULER_KEY, 0.0, now))
        return out

    @staticmethod
    def _normal(key: str, value: float, now: datetime) -> Condition:
        return Condition(key, STORAGE_JOB_RULE, "operations", _SYSTEM, now, value, None, True,
                         clear_after=1)  # fmt: skip

    @staticmethod
    def _stuck(key: str, job: JobHealth, now: datetime) -> Condition:
        hours = job.lag_s / 3600.0
        local = hanoi_time(now)
        texts = (
            f"Tác vụ lưu trữ không chạy: {job.proc} ({job.relation})",
            f"Storage job not running: {job.proc} ({job.relation})",
            f"Tác vụ TimescaleDB #{job.job_id} ({job.proc} trên {job.relation}) chưa hoàn thành "
            f"trong {number_vi(hours)} giờ (lúc {local}, giờ Hà Nội), quá ba chu kỳ "
            f"{job.interval_s / 60:.0f} phút. Biểu đồ có thể thiếu số liệu hoặc ổ đĩa đầy dần. "
            "Kiểm tra bộ lập lịch TimescaleDB và nhật ký PostgreSQL.",
            f"TimescaleDB job #{job.job_id} ({job.proc} on {job.relation}) has not completed "
            f"for {hours:.1f} h (at {local}, Hanoi time), over three of its "
            f"{job.interval_s / 60:.0f}-minute intervals. Charts may miss data or the disk fill "
            "up. Check the TimescaleDB scheduler and the PostgreSQL log.",
        )
        details: dict[str, str | float | int | bool | None] = {
            "job_id": job.job_id, "proc": job.proc, "relation": job.relation,
            "last_status": job.last_status, "failures": job.failures,
            "lag_s": round(job.lag_s, 1),
        }  # fmt: skip
        return Condition(
            key, STORAGE_JOB_RULE, "operations", _SYSTEM, now, round(job.lag_s, 1),
            Severity.MODERATE, False, 3 * job.interval_s, texts, f"{STORAGE_JOB_RULE}:system",
            details, clear_after=1,
        )  # fmt: skip

    @staticmethod
    def _scheduler(failing: Sequence[JobHealth], now: datetime) -> Condition:
        names = ", ".join(f"#{j.job_id} {j.proc}" for j in failing)
        texts = (
            "Bộ lập lịch TimescaleDB lỗi – tác vụ do ingest chạy thay",
            "TimescaleDB scheduler failing – jobs run by ingest's upkeep",
            f"Lần chạy nền gần nhất của {len(failing)} tác vụ TimescaleDB bị lỗi ({names}); "
            "dịch vụ ingest đang tự chạy các tác vụ này nên không mất số liệu. Kiểm tra nhật ký "
            "PostgreSQL (PostgreSQL 15.20 có lỗi đã biết: cannot drop portal).",
            f"The last background run of {len(failing)} TimescaleDB job(s) failed ({names}); "
            "ingest's upkeep runs them instead, so nothing is lost. Check the PostgreSQL log "
            "(PostgreSQL 15.20 has a known fault: cannot drop portal).",
        )
        return Condition(
            _SCHEDULER_KEY, STORAGE_JOB_RULE, "operations", _SYSTEM, now, float(len(failing)),
            Severity.MINOR, False, None, texts, f"{STORAGE_JOB_RULE}:system",
            {"failing_jobs": names}, clear_after=1,
        )  # fmt: skip
