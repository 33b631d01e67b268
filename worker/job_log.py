"""arq's job-start log line with the true start delay.

arq logs a job's start as `  0.02s → <job id>:run_task('<task id>') delayed=300.02s`: the first figure is the
time since the job was enqueued, `delayed` the start time minus the job's score in the queue. Our scores put a
priority's head start before the enqueue time (service/queueing.py), so for a normal job `delayed` is its wait
plus 300 s. A job is due at its score or at its enqueue time, whichever is later (a deferred retry's score lies
ahead of its enqueue time), so its true delay is the smaller of the two figures: the filter writes that one,
and leaves it out under arq's own threshold, as arq does.
"""

from __future__ import annotations

import logging
import re

ARQ_WORKER_LOGGER = "arq.worker"
JOB_START_FORMAT = "%6.2fs → %s(%s)%s"  # arq.worker.Worker.run_job's line: since enqueue, ref, args, extra
DELAYED = re.compile(r" delayed=(?P<seconds>\d+(?:\.\d+)?)s")
SHOWN_ABOVE_S = 1.2  # arq writes `delayed=` only past 1200 ms


class TrueStartDelay(logging.Filter):
    """Rewrites the `delayed=` of arq's job-start lines to the time the job waited once due."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg != JOB_START_FORMAT or not isinstance(record.args, tuple) or len(record.args) != 4:
            return True
        since_enqueue, ref, arguments, extra = record.args
        if not isinstance(since_enqueue, float) or not isinstance(extra, str):
            return True
        found = DELAYED.search(extra)
        if found is None:
            return True
        delay = min(float(found["seconds"]), since_enqueue)
        shown = f" delayed={delay:0.2f}s" if delay > SHOWN_ABOVE_S else ""
        record.args = (since_enqueue, ref, arguments, f"{extra[: found.start()]}{shown}{extra[found.end() :]}")
        return True


TRUE_START_DELAY = TrueStartDelay()


def correct_start_delays() -> None:
    """Install the filter on arq's worker logger (once: a logger keeps one copy of a filter)."""
    logging.getLogger(ARQ_WORKER_LOGGER).addFilter(TRUE_START_DELAY)
