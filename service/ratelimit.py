"""The per-user request rate: one token bucket per user in Redis, shared by every API process.

The bucket is kept as a single timestamp, its "theoretical arrival time" (GCRA, the usual way to store a
token bucket in one key): each allowed request moves it one emission interval (1 / rate) further, and a
request is refused while the timestamp is more than `burst` intervals ahead of now. One atomic Lua script
(one EVALSHA) per request reads and moves it, on Redis's own clock, so API processes on different hosts
agree without a lock.

Redis is only transport here: when it is down or slow the request passes and a warning is logged (at most
one per LOG_EVERY_S, with the count of the failures in between), and Redis is left alone for
BACKOFF_S after a failure so an outage costs the hot path nothing.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from redis.asyncio import Redis

log = logging.getLogger(__name__)

LOG_EVERY_S = 10.0
BACKOFF_S = 1.0

# KEYS[1]: the user's bucket. ARGV: emission interval (seconds per request), burst (requests), cost (requests this
# one counts as). Returns 0 when allowed, else the milliseconds until it would be.
GCRA = """
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local allowed_at = tat + cost * interval - burst * interval
if now < allowed_at then
  return math.ceil((allowed_at - now) * 1000)
end
tat = tat + cost * interval
redis.call('SET', KEYS[1], string.format('%.6f', tat), 'PX', math.ceil((tat - now) * 1000) + 1000)
return 0
"""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after_s: int = 0  # whole seconds, >= 1 when refused (the Retry-After header)


ALLOWED = Decision(True)


class RateLimiter:
    """`await limiter.check(user_id)`: may this user make one more request now?"""

    def __init__(
        self,
        redis: Redis,
        key_prefix: str,
        rate_per_s: float,
        burst: int,
        timeout_s: float = 0.1,
        on_refused: Callable[[], None] | None = None,
    ) -> None:
        self.redis = redis
        self.key_prefix = f"{key_prefix}agensium:ratelimit:"
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.timeout_s = timeout_s
        self.on_refused = on_refused  # e.g. a metrics counter's inc
        self.enabled = rate_per_s > 0 and burst > 0
        self._script = redis.register_script(GCRA)
        self._interval = f"{1 / rate_per_s:.9f}" if self.enabled else "0"
        self._skip_until = 0.0  # after a Redis failure: allow without asking until then
        self._failures = 0  # failures not yet logged
        self._logged_at = -math.inf

    async def check(self, user_id: str, cost: int = 1) -> Decision:
        """`cost`: how many requests this one counts as (at most the burst, so that it can ever pass)."""
        if not self.enabled:
            return ALLOWED
        now = time.monotonic()
        if now < self._skip_until:
            return ALLOWED
        try:
            async with asyncio.timeout(self.timeout_s):
                wait_ms = int(
                    await self._script(
                        keys=[self.key_prefix + user_id],
                        args=[self._interval, self.burst, min(max(cost, 1), self.burst)],
                    )
                )
        except Exception as exc:  # noqa: BLE001 - Redis down, slow or refusing: the request passes
            self._redis_failed(now, exc)
            return ALLOWED
        if wait_ms <= 0:
            return ALLOWED
        if self.on_refused is not None:
            self.on_refused()
        return Decision(False, max(1, math.ceil(wait_ms / 1000)))

    def _redis_failed(self, now: float, exc: BaseException) -> None:
        self._skip_until = now + BACKOFF_S
        self._failures += 1
        if now - self._logged_at >= LOG_EVERY_S:
            log.warning(
                "rate limiter: Redis unavailable (%s: %s); letting requests pass (%d failure(s) since the last "
                "warning)",
                type(exc).__name__,
                exc,
                self._failures,
            )
            self._logged_at, self._failures = now, 0
