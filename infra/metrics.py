"""The process's Prometheus metrics (served at /metrics).

Two kinds, by where they are counted:

- on the event loop, per frame and per push (tens of thousands a second): `Tally` and
  `Spread` below, plain integers bumped without a lock (only the loop's thread writes
  them) and turned into Prometheus samples when scraped. prometheus_client's own
  metrics take a lock per update (about 1 µs; 3 µs with labels), a few percent of a
  push's whole cost;
- everywhere else (database workers, REST requests, publishing): prometheus_client's
  own thread-safe metrics.
"""

import bisect
from collections import defaultdict

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Tally:
    """A counter (with at most one label) written only by the event loop's thread."""

    def __init__(self, name: str, documentation: str, label: str | None = None):
        self.name = name
        self.documentation = documentation
        self.label = label
        self.counts: defaultdict[str | None, int] = defaultdict(int)
        if label is None:
            # Exported as 0 before the first add: a counter that appears only at its
            # first increment hides that increment from rate().
            self.counts[None] = 0

    def add(self, key: str | None = None, amount: int = 1) -> None:
        self.counts[key] += amount

    def family(self) -> CounterMetricFamily:
        family = CounterMetricFamily(
            self.name, self.documentation, labels=[self.label] if self.label else None
        )
        for key, value in list(self.counts.items()):
            family.add_metric([key] if self.label else [], value)
        return family


class Level:
    """A gauge written only by the event loop's thread."""

    def __init__(self, name: str, documentation: str):
        self.name = name
        self.documentation = documentation
        self.value = 0

    def family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(self.name, self.documentation, value=self.value)


class Spread:
    """A histogram written only by the event loop's thread."""

    def __init__(self, name: str, documentation: str, buckets=LATENCY_BUCKETS):
        self.name = name
        self.documentation = documentation
        self.bounds = list(buckets)
        self.counts = [0] * (len(self.bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def family(self) -> HistogramMetricFamily:
        cumulative, running = [], 0
        for bound, count in zip([*map(str, self.bounds), "+Inf"], self.counts, strict=True):
            running += count
            cumulative.append((bound, running))
        family = HistogramMetricFamily(self.name, self.documentation)
        family.add_metric([], cumulative, sum_value=self.total)
        return family


CONNECTIONS = Level("rim_ws_connections", "Open WebSocket connections.")
LOGGED_IN = Level("rim_ws_logged_in", "WebSocket connections bound to a user.")
CLIENT_EVENTS = Tally("rim_ws_events", "Client events received, by event name.", "event")
ACKS = Tally("rim_ws_acks", "Acks sent, by content (Ok or the error code).", "code")
ACK_LATENCY = Spread("rim_ws_ack_seconds", "From a frame's arrival to its ack.")
PUSHES = Tally("rim_ws_pushes", "Pushes written to WebSocket connections.")
REPAIRS = Tally("rim_ws_repairs", "Deliveries repaired from the database, by kind.", "kind")
CLOSES = Tally("rim_ws_closes", "Connections the server closed, by close code.", "code")


class _LoopMetrics:
    def collect(self):
        for metric in (CONNECTIONS, LOGGED_IN, CLIENT_EVENTS, ACKS, ACK_LATENCY, PUSHES):
            yield metric.family()
        yield REPAIRS.family()
        yield CLOSES.family()


REGISTRY.register(_LoopMetrics())

EVENTS_PUBLISHED = Counter(
    "rim_events_published", "Layer events published after commit, by type.", ["type"]
)
LAYER_DROPS = Counter(
    "rim_layer_drops", "Layer events dropped before reaching the layer, by reason.", ["reason"]
)
DB_QUEUE_DEPTH = Gauge("rim_db_queue_depth", "Database calls queued or running on the workers.")
DB_WAIT = Histogram(
    "rim_db_wait_seconds", "Time a database call waited for its worker.", buckets=LATENCY_BUCKETS
)
REST_REQUESTS = Counter(
    "rim_rest_requests", "REST requests answered, by route and status.", ["route", "status"]
)
