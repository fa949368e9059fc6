"""bench_served reads wrk's summary and pools the latencies of several wrk runs exactly enough
for a median and a 99th percentile."""

from __future__ import annotations

from benchmarks.bench_served import Load, parse_wrk

SUMMARY = """Running 60m test @ http://127.0.0.1:1/slack/events
started
answered 100
  Socket errors: connect 0, read 1, write 0, timeout 2
  Non-2xx or 3xx responses: 3
quantile 50.00 2000
quantile 99.00 9000
quantile 100.00 30000
"""


def test_wrk_summary_becomes_figures() -> None:
    load = parse_wrk(SUMMARY, 100, 0.5)
    assert load.per_second == 200
    assert load.failures == 6
    assert load.p50_ms == 2.0
    assert load.p99_ms == 9.0


def test_runs_are_pooled_by_their_events() -> None:
    fast = Load(events=300, seconds=1.0, latencies=((1.0, 300.0),), failures=0)
    slow = Load(events=100, seconds=1.0, latencies=((1.0, 90.0), (50.0, 10.0)), failures=1)
    pooled = Load.merged([fast, slow])
    assert (pooled.events, pooled.seconds, pooled.failures) == (400, 2.0, 1)
    assert pooled.per_second == 200
    assert pooled.p50_ms == 1.0
    # 10 slow acks of 400 are 2.5%: the 99th percentile is among them.
    assert pooled.p99_ms == 50.0
