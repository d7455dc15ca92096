"""The load test's simulated customers and the tally of their requests: plain records, filled in by
``perf.browsing`` while the load runs and read by ``perf.checks`` and ``perf.load`` afterwards."""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field


@dataclass
class User:
    """One simulated customer, and what the portal has told them so far."""

    index: int
    email: str
    account_id: int
    token: str = ""
    cards: set[int] = field(default_factory=set)       # what the user's successful actions imply
    default: int | None = None
    expiry: dict[int, tuple[int, int]] = field(default_factory=dict)  # last successfully saved expiry
    invoice_ids: list[int] = field(default_factory=list)
    more_url: str | None = None
    email_copies: int = 0
    uncertain: list[str] = field(default_factory=list)  # writes whose answer never came


@dataclass
class Tally:
    """Requests by kind and status, latencies, and everything that went wrong."""

    statuses: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    transport_errors: Counter = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    stale_reads: list[str] = field(default_factory=list)

    def record(self, kind: str, status: int, seconds: float) -> None:
        self.statuses[kind][status] += 1
        self.latencies[kind].append(seconds * 1000)

