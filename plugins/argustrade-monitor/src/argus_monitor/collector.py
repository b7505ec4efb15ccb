"""The Prometheus collector: every metric is computed when scraped, in the scrape thread,
from the probe (what the hooks noted) and a read-only look at the ledger."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from argus_core import LedgerError, TradingState
from argus_monitor.ledger_view import LedgerSnapshot, LedgerView
from argus_monitor.probe import LoopProbe

_NS = 1e9


class RunCollector(Collector):
    """Metrics of one run (names, types and labels are listed in the README)."""

    def __init__(self, probe: LoopProbe, run_dir: Path, *, run_id: str, mode: str,
                 venue: str, book_stale_after_s: float, event_stale_after_s: float,
                 ledger: LedgerView | None = None) -> None:
        self.probe = probe
        self.run_dir = Path(run_dir)
        self.ledger = ledger or LedgerView(self.run_dir)
        self.run_id, self.mode, self.venue = run_id, mode, venue
        self.book_stale_after_s = book_stale_after_s  # 0: books never go stale
        self.event_stale_after_s = event_stale_after_s

    def collect(self) -> Iterator[Metric]:
        """Called by prometheus-client for each scrape.  An unreadable ledger drops the
        ledger's figures (``argus_ledger_up`` 0), never the loop's."""
        info = GaugeMetricFamily("argus_run_info", "The run this process serves (value 1).",
                                 labels=["run_id", "mode", "venue"])
        info.add_metric([self.run_id, self.mode, self.venue], 1)
        yield info
        try:
            snap: LedgerSnapshot | None = self.ledger.read()
        except LedgerError:  # (LedgerView logged why)
            snap = None
        yield GaugeMetricFamily("argus_ledger_up", "1 while the run's ledger can be read, "
                                "else 0 (the ledger's metrics are then absent).",
                                value=float(snap is not None))
        if snap is not None:
            yield from self._ledger_metrics(snap)
        yield from self._loop_metrics()

    def _ledger_metrics(self, snap: LedgerSnapshot) -> Iterator[Metric]:
        for name, value, text in (
                ("argus_equity", snap.equity, "Equity at the last committed equity row."),
                ("argus_cash", snap.cash, "Cash at the last committed equity row."),
                ("argus_gross_exposure", snap.gross_exposure,
                 "Gross exposure at the last committed equity row.")):
            if value is not None:
                yield GaugeMetricFamily(name, text, value=value)
        orders = GaugeMetricFamily("argus_orders", "Orders in the ledger by status.",
                                   labels=["status"])
        for status, n in sorted(snap.orders_by_status.items()):
            orders.add_metric([status], n)
        yield orders
        yield CounterMetricFamily("argus_fills", "Fills committed to the ledger.",
                                  value=snap.fills)
        rejections = CounterMetricFamily(
            "argus_rejections", "Refused orders: vetoed by a risk check or rejected by the "
            "venue.", labels=["source"])
        rejections.add_metric(["risk"], snap.risk_vetoes)
        rejections.add_metric(["venue"], snap.orders_by_status.get("rejected", 0))
        yield rejections
        risk = CounterMetricFamily("argus_risk_events", "Risk events by check.",
                                   labels=["check"])
        for check, n in sorted(snap.risk_events_by_check.items()):
            risk.add_metric([check], n)
        yield risk
        opportunities = CounterMetricFamily("argus_opportunities",
                                            "Opportunities stored, by scanner.",
                                            labels=["scanner"])
        for scanner, n in sorted(dict(self.probe.opportunities).items()):
            opportunities.add_metric([scanner], n)
        yield opportunities
        state = GaugeMetricFamily("argus_trading_state",
                                  "1 for the run's trading state, 0 for the others.",
                                  labels=["state"])
        for candidate in TradingState:
            state.add_metric([candidate.value], float(snap.trading_state == candidate.value))
        yield state

    def _loop_metrics(self) -> Iterator[Metric]:
        probe = self.probe
        now_ns = probe.clock_ns()
        events, last_wall, last_ts, last_mono = probe.events, probe.last_event_wall_ns, \
            probe.last_event_ts_ns, probe.last_event_mono_ns
        age_s, _ = probe.quiet_s()  # monotonic: a wall clock step changes no age
        yield CounterMetricFamily("argus_events", "Market events that left the venue's "
                                  "stream.", value=events)
        if last_wall is not None and last_mono is not None and age_s is not None:
            yield GaugeMetricFamily("argus_last_event_age_seconds", "Seconds since the last "
                                    "market event.", value=age_s)
            elapsed = (last_mono - probe.started_mono_ns) / _NS
            if elapsed > 0:
                yield GaugeMetricFamily("argus_events_per_second", "Events per second of "
                                        "wall clock, averaged over the run so far.",
                                        value=events / elapsed)
            if self.mode != "replay" and last_ts is not None:
                yield GaugeMetricFamily("argus_loop_lag_seconds", "Wall clock minus the "
                                        "last event's own time stamp, when it arrived.",
                                        value=(last_wall - last_ts) / _NS)
        stalled_s = probe.stalled_s()
        if stalled_s is not None:
            yield GaugeMetricFamily("argus_loop_stalled_seconds", "Seconds the run's event "
                                    "loop has run nothing (no heartbeat, no event).",
                                    value=stalled_s)
        blocked_s = probe.blocked_s()
        if blocked_s is not None:
            yield GaugeMetricFamily("argus_stream_blocked_seconds", "Seconds the newest "
                                    "event has waited for the loop to take it (its queue "
                                    "full).", value=blocked_s)
        ages = GaugeMetricFamily("argus_book_age_seconds", "Age of the newest book per "
                                 "instrument.", labels=["instrument"])
        live = stale = 0
        for instrument, book_age_s in self._book_ages(now_ns, last_ts):
            ages.add_metric([instrument], book_age_s)
            if self.book_stale_after_s and book_age_s > self.book_stale_after_s:
                stale += 1
            else:
                live += 1
        yield ages
        books = GaugeMetricFamily("argus_venue_books", "Books by freshness.",
                                  labels=["venue", "state"])
        books.add_metric([self.venue, "live"], live)
        books.add_metric([self.venue, "stale"], stale)
        yield books
        up = GaugeMetricFamily("argus_venue_up", "1 while the venue's stream delivers "
                               "(an event within stale_after_s), else 0.", labels=["venue"])
        fresh = (age_s is not None and not probe.stopped
                 and age_s <= self.event_stale_after_s)
        up.add_metric([self.venue], float(fresh))
        yield up

    def _book_ages(self, now_ns: int, last_ts: int | None) -> list[tuple[str, float]]:
        """``(instrument, seconds)`` per book.  Replay: in event time (the wall clock says
        nothing about a replay).  Paper and live: the wall clock minus the book's stamp,
        and never less than the time since it arrived (monotonic), so that a book stamped
        in the future (a venue's clock ahead) still ages when it stops."""
        probe, out = self.probe, []
        mono_now = probe.monotonic_ns()
        arrived = dict(probe.book_mono_ns)
        for instrument, ts in sorted(dict(probe.book_ts_ns).items()):
            if self.mode == "replay":
                out.append((instrument, max(0.0, ((last_ts or ts) - ts) / _NS)))
                continue
            since_arrival_s = (mono_now - arrived.get(instrument, mono_now)) / _NS
            out.append((instrument, max(0.0, (now_ns - ts) / _NS, since_arrival_s)))
        return out
