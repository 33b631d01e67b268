"""The per-user request rate: one token bucket per user in Redis, shared by every API process.

The bucket is kept as a single timestamp, its "theoretical arrival time" (GCRA, the usual way to store a
token bucket in one key): each allowed request moves it one emission interval (1 / rate) further, and a
request is refused while the timestamp is more than `burst` intervals ahead of now. One atomic Lua script
(one EVALSHA) per request reads and moves it, on Redis's own clock, so API processes on different hosts
agree without a lock.

Redis is only transport here: when it is down or slow the request passes and a warning is logged (at most
one per LOG_EVERY_S, with the count of the failures in between), and Redis is left alone for
BACKOFF_S after a failure so an outage costs the hot path nothing.

A process does not ask Redis for every request: it takes a few tokens at once (`batch`, a tenth of the burst, at
most MAX_BATCH; one below a burst of 10, the exact behaviour) and spends them locally for at most LEASE_S. The
slack this buys, documented because the limit is shared: every request admitted was taken from the shared bucket,
so over any long window the users' rate holds exactly; but a token may be spent up to LEASE_S after it was taken,
so in a short window P processes may admit up to P x batch requests more than the exact bucket would (a process
tops its tokens up to a batch in the background once it holds less than half of one, so that requests do not wait
for Redis); and while one process holds unspent tokens another may refuse up to that many requests early (they are
spent, or dropped at the lease's end: never given back, never more than the bucket granted). With the defaults (20
requests/s, bursts of 100: batch 10) that is at most 10 requests per process, half a second of the rate.
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

LEASE_S = 1.0  # how long a process may keep tokens it took from the shared bucket before it drops them
MAX_BATCH = 100  # the most tokens a process takes from the shared bucket at once

# KEYS[1]: the user's bucket. ARGV: emission interval (seconds per request), burst (requests), the fewest tokens
# wanted (the requests this one counts as, less what the process still holds), the most (that plus a batch to
# spend locally). Returns {tokens granted, 0}, as many as the bucket holds up to the most, or {0, the milliseconds
# until the fewest would be} when it holds fewer than the fewest. GCRA with one token is the old single check.
GCRA = """
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local least = tonumber(ARGV[3])
local most = tonumber(ARGV[4])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local available = math.floor((now - tat) / interval + burst + 1e-9)
if available < least then
  local allowed_at = tat + least * interval - burst * interval
  return {0, math.max(1, math.ceil((allowed_at - now) * 1000))}
end
local granted = math.min(most, available)
tat = tat + granted * interval
redis.call('SET', KEYS[1], string.format('%.6f', tat), 'PX', math.ceil((tat - now) * 1000) + 1000)
return {granted, 0}
"""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after_s: int = 0  # whole seconds, >= 1 when refused (the Retry-After header)


ALLOWED = Decision(True)
MAX_HELD_USERS = 10_000  # users whose unspent tokens a process remembers at once


@dataclass
class _Held:
    """Tokens a process took from a user's shared bucket and may spend locally until `until` (time.monotonic())."""

    tokens: int
    until: float


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
        self.batch = max(1, min(MAX_BATCH, burst // 10))
        self._held: dict[str, _Held] = {}  # per user: the tokens this process took and has not spent yet
        # Per user, while a take from Redis is under way: concurrent checks wait for it rather than each taking a
        # batch (twenty concurrent first requests would otherwise take twenty batches, and be refused for it).
        self._taking: dict[str, asyncio.Future[None]] = {}
        self._topping_up: set[asyncio.Task[None]] = set()  # the background top-ups running (a reference each)
        self._skip_until = 0.0  # after a Redis failure: allow without asking until then
        self._failures = 0  # failures not yet logged
        self._logged_at = -math.inf

    async def check(self, user_id: str, cost: int = 1) -> Decision:
        """`cost`: how many requests this one counts as (at most the burst, so that it can ever pass). Spent from
        the tokens this process holds for the user when it holds enough: no Redis round trip."""
        if not self.enabled:
            return ALLOWED
        cost = min(max(cost, 1), self.burst)
        while True:
            now = time.monotonic()
            held = self._held.get(user_id)
            if held is not None and held.tokens >= cost and held.until > now:
                held.tokens -= cost
                self._top_up_early(user_id, held.tokens)
                return ALLOWED
            if now < self._skip_until:
                return ALLOWED
            taking = self._taking.get(user_id)
            if taking is None:
                break
            await asyncio.shield(taking)  # one take per user at a time: then spend what it brought, or take again
        taking = self._taking[user_id] = asyncio.get_running_loop().create_future()
        try:
            return await self._take(user_id, cost, now)
        finally:
            del self._taking[user_id]
            taking.set_result(None)

    async def _take(self, user_id: str, cost: int, now: float) -> Decision:
        """Take what this request lacks, and a batch more to spend locally, from the shared bucket."""
        held = self._held.pop(user_id, None)
        kept = held.tokens if held is not None and held.until > now else 0  # set aside: concurrent checks miss them
        least = cost - kept
        try:
            async with asyncio.timeout(self.timeout_s):
                granted, wait_ms = await self._script(
                    keys=[self.key_prefix + user_id],
                    args=[self._interval, self.burst, least, least + self.batch - 1],
                )
        except Exception as exc:  # noqa: BLE001 - Redis down, slow or refusing: the request passes
            self._redis_failed(now, exc)
            return ALLOWED
        left = kept + int(granted) - cost if int(granted) > 0 else kept
        if left > 0:
            self._keep(user_id, left, now)
        if int(granted) > 0:
            return ALLOWED
        if self.on_refused is not None:
            self.on_refused()
        return Decision(False, max(1, math.ceil(int(wait_ms) / 1000)))

    def _top_up_early(self, user_id: str, tokens: int) -> None:
        """Below half a batch in hand, fill it up again in the background, so that requests never wait for Redis
        while the bucket has tokens (under load, every request of the user would otherwise queue behind the take
        that a run-out starts). Never more than a batch in hand; not with a batch of one (the exact limit)."""
        if self.batch == 1 or tokens * 2 >= self.batch or user_id in self._taking:
            return
        taking = self._taking[user_id] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(self._top_up(user_id, self.batch - tokens, taking))
        self._topping_up.add(task)
        task.add_done_callback(self._topping_up.discard)

    async def _top_up(self, user_id: str, most: int, taking: asyncio.Future[None]) -> None:
        now = time.monotonic()
        try:
            async with asyncio.timeout(self.timeout_s):
                granted, _ = await self._script(
                    keys=[self.key_prefix + user_id], args=[self._interval, self.burst, 1, most]
                )
            if int(granted) > 0:  # none when the bucket is empty: the next request takes, and is refused, itself
                self._keep(user_id, int(granted), now)
        except Exception as exc:  # noqa: BLE001 - as in check: the requests pass
            self._redis_failed(now, exc)
        finally:
            del self._taking[user_id]
            taking.set_result(None)

    def _keep(self, user_id: str, tokens: int, now: float) -> None:
        """Hold `tokens` more for the user until LEASE_S from now (added to what a concurrent check put back)."""
        held = self._held.get(user_id)
        if held is not None and held.until > now:
            held.tokens += tokens
            return
        if len(self._held) >= MAX_HELD_USERS:  # a bound on memory: forgetting tokens only makes the limit stricter
            self._held.clear()
        self._held[user_id] = _Held(tokens, now + LEASE_S)

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
