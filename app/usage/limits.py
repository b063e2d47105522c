"""Client keys' limits as pure policy: the models each key may use, requests and tokens per sliding window,
and requests at once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from ..config import ClientKey
from ..errors import PermissionDenied

# A window is counted in this many buckets, plus the one it started in: usage is never
# under-counted (a limit is never exceeded), and may linger up to one bucket (1/60) too long.
BUCKETS = 60
_UNITS = {60: "minute", 86400: "day"}
# A request holds its slot under a concurrency limit until its record is stored, or for this many
# seconds at most: a worker killed outright (SIGKILL, out of memory) cannot hold a slot for longer.
CONCURRENCY_LEASE = 900
# Bytes of a request body per token, for the estimate held against token limits while it runs.
BYTES_PER_TOKEN = 4


@dataclass(frozen=True)
class Limit:
    """At most `amount` requests or tokens (`metric`) in any `window` seconds; or, for the metric
    "concurrent", at most `amount` requests at once, each holding its slot `window` seconds at most."""

    metric: str  # "requests" | "tokens" | "concurrent"
    window: int
    amount: int

    @property
    def name(self) -> str:
        return f"{self.metric}/{self.window}"

    @property
    def width(self) -> float:
        return self.window / BUCKETS

    def bucket(self, now: float) -> int:
        return int(now // self.width)

    def oldest(self, now: float) -> int:
        """The oldest bucket still counted at `now`."""
        return self.bucket(now) - BUCKETS

    def expires(self, bucket: int) -> float:
        """When a bucket stops counting."""
        return (bucket + BUCKETS + 1) * self.width

    def wait(self, buckets: Mapping[int, int], now: float) -> float | None:
        """Seconds until the usage in `buckets` is under the limit again; None if it is now."""
        counted = sorted((b, n) for b, n in buckets.items() if b >= self.oldest(now))
        excess = sum(n for _, n in counted) - self.amount + 1
        if excess <= 0:
            return None
        for b, n in counted:
            excess -= n
            if excess <= 0:
                return max(0.001, self.expires(b) - now)
        raise AssertionError("unreachable: the counted buckets hold the whole excess")

    def describe(self) -> str:
        if self.metric == "concurrent":
            return f"{self.amount} concurrent requests"
        return f"{self.amount} {self.metric} per {_UNITS.get(self.window, f'{self.window}s')}"


def limits_of(key: ClientKey) -> tuple[Limit, ...]:
    pairs = (
        ("requests", 60, key.requests_per_minute),
        ("tokens", 60, key.tokens_per_minute),
        ("tokens", 86400, key.tokens_per_day),
        ("concurrent", CONCURRENCY_LEASE, key.concurrent_requests),
    )
    return tuple(Limit(metric, window, amount) for metric, window, amount in pairs if amount)


def check_model(patterns: Sequence[str], model: str) -> None:
    """PermissionDenied unless the model matches one of the key's allowed patterns."""
    name = str(model).removeprefix("models/")
    if not any(fnmatchcase(name, pattern) for pattern in patterns):
        raise PermissionDenied(f"This API key may not use the model {name!r}.", param="model")
