"""What the service tells a tool run besides its inputs and parameters: limits and switches from its
settings (``service/config.py``), sent to the agent process with each job. Agents read no environment."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_MAX_COLUMNS = 20_000
FAILED_AGENTS_KEY = "failed_agents"
"""In a run's result (agents.chain.run_tool): the agents that started and failed by an error of theirs (a bug: no
input makes an agent fail, an input error fails the task), whose credits the worker gives back; it takes the key out of
the result it stores."""


@dataclass(frozen=True)
class RunOptions:
    max_columns: int = DEFAULT_MAX_COLUMNS
    """An input with more columns ends ``INVALID_FILE`` as it is read (a CSV from its header, before any
    parsing)."""
    streaming_threshold_bytes: int | None = None
    """A CSV/TSV primary larger than this is read into a Parquet spill and scanned (bounded memory) by the tools
    that can (``agents.chain.STREAMED_TOOLS``);
    None: the memory the agent process may use divided by ``agents.chain.IN_MEMORY_FACTOR``."""
    diagnostics: bool = False
    """The hidden ``diagnostics`` tool (agents.diagnostics) may run."""
    keep_dir: Path | None = None
    """search-my-data: the local mirror of what is kept with the dataset searched (agents.search.kept), which the
    run reads and adds to; None: nothing is kept (a dataset uploaded with the search itself, the agent tests)."""
