"""arq's job-start line tells the true start delay: a priority's head start (a queue score before the enqueue
time, service/queueing.py) is no delay, a deferred retry's wait past its due time is."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import httpx
import pytest

from tests.support import run_to_completion
from worker.job_log import ARQ_WORKER_LOGGER, JOB_START_FORMAT, TrueStartDelay

live = pytest.mark.asyncio(loop_scope="session")  # the async tests only: the others are plain functions

JOB_START = re.compile(r"^ *(?P<waited>\d+\.\d\d)s → (?P<ref>\S+)\((?P<args>.*)\)(?P<extra>.*)$")


def job_start(since_enqueue_s: float, extra: str) -> logging.LogRecord:
    """The record arq.worker.Worker.run_job logs as a job starts."""
    args = (since_enqueue_s, "job-1:run_task", "'task-1'", extra)
    return logging.LogRecord(ARQ_WORKER_LOGGER, logging.INFO, "worker.py", 594, JOB_START_FORMAT, args, None)


@pytest.mark.parametrize(
    ("since_enqueue_s", "extra", "message"),
    [
        # a normal job that started at once: the 300 s head start is no delay
        (0.02, " delayed=300.02s", "  0.02s → job-1:run_task('task-1')"),
        # an urgent job that waited 5 s for a slot: that wait, not the day of head start
        (5.0, " delayed=86405.00s", "  5.00s → job-1:run_task('task-1') delayed=5.00s"),
        # a retry deferred by 30 s that started 2.5 s after it was due: arq's figure is already true
        (32.5, " try=2 delayed=2.50s", " 32.50s → job-1:run_task('task-1') try=2 delayed=2.50s"),
        (0.5, "", "  0.50s → job-1:run_task('task-1')"),
    ],
)
def test_the_delay_is_counted_from_when_the_job_was_due(since_enqueue_s: float, extra: str, message: str) -> None:
    record = job_start(since_enqueue_s, extra)
    assert TrueStartDelay().filter(record)
    assert record.getMessage() == message


def test_other_lines_pass_as_they_are() -> None:
    record = logging.LogRecord(ARQ_WORKER_LOGGER, logging.INFO, "w.py", 1, "%s delayed=%s", ("x", "300s"), None)
    assert TrueStartDelay().filter(record) and record.getMessage() == "x delayed=300s"


@live
async def test_the_workers_line_for_an_urgent_task_shows_no_head_start(
    client: httpx.AsyncClient, worker: None, csv_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ARQ_WORKER_LOGGER)
    task = await run_to_completion(client, {"primary.csv": csv_file}, priority="urgent")
    assert task["status"] == "COMPLETED"
    (line,) = [
        r.getMessage() for r in caplog.records if r.msg == JOB_START_FORMAT and task["task_id"] in r.getMessage()
    ]
    started = JOB_START.match(line)
    assert started is not None, line
    delayed = re.search(r"delayed=(\d+\.\d\d)s", started["extra"])
    # without the filter: delayed = its wait + 86400 s (the urgent head start)
    assert delayed is None or float(delayed[1]) <= float(started["waited"]), line
