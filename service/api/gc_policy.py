"""The API process's cyclic garbage collector policy: what outlives a full collection is frozen.

An open event stream is ~75 GC-tracked objects (uvicorn's protocol, its parser's callbacks and request cycle, the
stream's tasks, coroutines and generators), so 10,000 streams are ~750,000 objects that live for hours. Python's
collector walks every one of them in each full collection, ~300-400 ms with the event loop held, which fell in
the middle of fan-outs: the last streams, and every other request, waited for it.

Here, right after each full collection, its survivors are frozen (`gc.freeze`, constant time: they leave the
collector's generations), so that every later collection walks only what was created since. Frozen objects are
still freed by reference counting, which is how a closed stream's objects go (tests/service/test_streams_gc.py).
What a frozen object cannot do is be collected as part of an unreachable cycle; so once the process's memory
blocks (`sys.getallocatedblocks`, cheap to read) or its resident memory (a cycle may hold a large buffer, one
block) have grown to `growth` times what they were after the last complete collection, or their low point since,
a complete one runs: unfreeze, collect, freeze again. Cyclic
garbage so stays bounded by the live heap, as under the collector's own rules, at the cost of one full pause per
doubling of the heap instead of one per quarter of its long-lived objects.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import logging
import os
import sys
import time
from typing import Any

log = logging.getLogger(__name__)
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

GROWTH = 2.0
# Below this many memory blocks a complete collection is cheap: no need to wait for more growth (an API process
# starts with ~0.7 M; 10,000 open streams are another ~1.2 M).
MIN_COMPLETE_AT = 1_000_000
MIN_COMPLETE_RESIDENT = 512 * 1024**2  # nor below this much resident memory (an idle API process holds ~150 MB)


class FreezingCollector:
    """The policy, installed on the application's event loop for its lifespan (`start`, `stop`)."""

    def __init__(
        self,
        growth: float = GROWTH,
        min_complete_at: int = MIN_COMPLETE_AT,
        min_complete_resident: int = MIN_COMPLETE_RESIDENT,
    ) -> None:
        self.growth = growth
        self.min_complete_at = min_complete_at
        self.min_complete_resident = min_complete_resident
        self.reference_blocks = 0  # memory blocks after the last complete collection, or their low point since
        self.reference_resident = 0  # resident bytes likewise
        self.complete_collections = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._completing = False
        self._scheduled = False

    @property
    def complete_at(self) -> int:
        """How many memory blocks call for a complete collection."""
        return max(self.min_complete_at, int(self.growth * self.reference_blocks))

    @property
    def complete_at_resident(self) -> int:
        """How many resident bytes call for a complete collection."""
        return max(self.min_complete_resident, int(self.growth * self.reference_resident))

    def start(self) -> None:
        """Freeze what start-up built (modules, catalog, schemas) and follow every full collection from now on."""
        self._loop = asyncio.get_running_loop()
        self.collect_all()
        gc.callbacks.append(self._after_collection)

    def stop(self) -> None:
        """Stop following collections and hand the frozen objects back to the collector's ordinary care."""
        if self._after_collection in gc.callbacks:
            gc.callbacks.remove(self._after_collection)
        self._loop = None
        gc.unfreeze()

    def collect_all(self) -> None:
        """A complete collection, frozen objects included (the one long pause this policy keeps), then freeze."""
        self._scheduled = False
        self._completing = True
        started = time.perf_counter()
        try:
            gc.unfreeze()
            collected = gc.collect()
            gc.freeze()
        finally:
            self._completing = False
        self.reference_blocks = sys.getallocatedblocks()
        self.reference_resident = resident_bytes()
        self.complete_collections += 1
        log.info(
            "complete garbage collection: %d objects unreachable, %.0f ms",
            collected,
            (time.perf_counter() - started) * 1000,
        )

    def _scheduled_collection(self) -> None:
        if self._loop is not None:  # not once stopped: nothing would unfreeze what it froze
            self.collect_all()
        self._scheduled = False

    def _after_collection(self, phase: str, info: dict[str, Any]) -> None:
        """A gc callback (from any thread): after a full collection, freeze its survivors, every one alive."""
        if phase != "stop" or info["generation"] != 2 or self._completing:
            return
        gc.freeze()
        blocks, resident = sys.getallocatedblocks(), resident_bytes()
        self.reference_blocks = min(self.reference_blocks, blocks)
        self.reference_resident = min(self.reference_resident, resident)
        loop = self._loop
        if loop is None or self._scheduled or (blocks < self.complete_at and resident < self.complete_at_resident):
            return
        self._scheduled = True
        try:
            # Not from inside a collection (gc.collect would not run), nor in the context of the request that was
            # allocating (its log lines would name it).
            loop.call_soon_threadsafe(self._scheduled_collection, context=contextvars.Context())
        except RuntimeError:  # the loop is closed: the application is gone
            self._scheduled = False


def resident_bytes() -> int:
    """The process's resident memory (Linux: /proc/self/statm); 0 where it cannot be read."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * PAGE_BYTES
    except (OSError, ValueError, IndexError):
        return 0
