"""Prometheus metrics of the provider, on LiteLLM's ``/metrics``.

LiteLLM's prometheus callback (``litellm_settings.callbacks: ["prometheus"]``) serves
``prometheus_client``'s default registry, so metrics registered here appear beside LiteLLM's
own (requests, tokens, latency by key and alias). Without ``prometheus_client`` installed
the provider runs unchanged and exports nothing.

Fed from two places: the per-request record (one call when a request ends) and the engine's
slots and pool, read at scrape time (gauges with functions, never stale).
"""

from __future__ import annotations

from typing import Any, Protocol

try:
    from prometheus_client import Counter, Gauge, Histogram
except ImportError:  # pragma: no cover - the dependency is declared; this keeps a bare import working
    Counter = Gauge = Histogram = None  # type: ignore[assignment,misc]

__all__ = ["bind_engine", "observe"]

_TIME_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120)


class _Record(Protocol):
    model: str
    status: int
    warm: bool
    cold_reason: str | None
    ttft_ms: float | None
    total_ms: float
    rate_limit: str | None


class _EngineView(Protocol):
    slots: Any
    pool: Any


_metrics: dict[str, Any] = {}
_engine: list[_EngineView] = []


def _setup() -> dict[str, Any]:
    if _metrics or Counter is None:
        return _metrics
    p = "claude_code_"
    _metrics.update(
        requests=Counter(
            p + "requests", "Requests the provider finished, by alias and HTTP status.", ["model", "status"]
        ),
        warm=Counter(p + "warm_requests", "Requests served by a warm CLI process.", ["model"]),
        cold=Counter(p + "cold_starts", "CLI processes started for a request, by reason.", ["reason"]),
        upstream_errors=Counter(p + "errors", "Requests that failed, by HTTP status.", ["status"]),
        ttft=Histogram(p + "time_to_first_token_seconds", "Arrival to first token.", ["model"], buckets=_TIME_BUCKETS),
        duration=Histogram(p + "request_duration_seconds", "Arrival to end.", ["model"], buckets=_TIME_BUCKETS),
        window=Gauge(p + "subscription_window_utilization", "Last reported use of a window (0..1).", ["window"]),
        busy=Gauge(p + "processes_busy", "CLI processes answering a request."),
        alive=Gauge(p + "processes_alive", "CLI processes alive (busy or warm)."),
        warm_set=Gauge(p + "warm_processes", "Idle warm CLI processes."),
        clean=Gauge(p + "clean_processes", "Idle CLI processes holding no conversation (the floor and spares)."),
        floor=Gauge(p + "warm_floor", "Clean CLI processes always kept ready (WARM_FLOOR)."),
        demand=Gauge(p + "recent_peak_requests", "Most requests served at once within WARM_WINDOW."),
        queue=Gauge(p + "queue_depth", "Requests waiting for a slot."),
        capacity=Gauge(p + "max_concurrency", "Most CLI processes alive at once."),
        hit_rate=Gauge(p + "warm_hit_rate", "Share of requests served warm since start."),
    )
    _metrics["busy"].set_function(lambda: _read(lambda e: e.slots.in_use - e.pool.idle))
    _metrics["alive"].set_function(lambda: _read(lambda e: e.slots.in_use))
    _metrics["warm_set"].set_function(lambda: _read(lambda e: e.pool.idle))
    _metrics["clean"].set_function(lambda: _read(lambda e: e.pool.clean()))
    _metrics["floor"].set_function(lambda: _read(lambda e: e.pool.floor))
    _metrics["demand"].set_function(lambda: _read(lambda e: e.pool.demand()))
    _metrics["queue"].set_function(lambda: _read(lambda e: e.slots.waiting))
    _metrics["capacity"].set_function(lambda: _read(lambda e: e.slots.capacity))
    _metrics["hit_rate"].set_function(lambda: _read(lambda e: e.pool.stats.hit_rate))
    return _metrics


def _read(get: Any) -> float:
    if not _engine:
        return 0.0
    try:
        return float(get(_engine[0]))
    except Exception:
        return 0.0


def bind_engine(engine: _EngineView) -> None:
    """The engine whose slots and pool the gauges read (the proxy worker's; the latest wins)."""
    if _setup():
        _engine[:] = [engine]


def observe(record: _Record) -> None:
    """Count one finished request."""
    m = _setup()
    if not m:
        return
    m["requests"].labels(record.model, str(record.status)).inc()
    if record.warm:
        m["warm"].labels(record.model).inc()
    elif record.cold_reason:
        m["cold"].labels(record.cold_reason).inc()
    if record.status >= 400:
        m["upstream_errors"].labels(str(record.status)).inc()
    if record.ttft_ms is not None:
        m["ttft"].labels(record.model).observe(record.ttft_ms / 1000)
    m["duration"].labels(record.model).observe(record.total_ms / 1000)
    # ``five_hour:0.82,seven_day:0.40``; ``-`` or ``five_hour:rejected`` carry no utilisation
    # and must not create a series (labels() alone would, with a value of 0).
    for item in (record.rate_limit or "").split(","):
        window, _, value = item.partition(":")
        try:
            utilization = float(value)
        except ValueError:
            continue
        if window.strip():
            m["window"].labels(window.strip()).set(utilization)
