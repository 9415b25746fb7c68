"""The provider's metrics appear on LiteLLM's ``/metrics`` after real traffic.

A proxy with LiteLLM's prometheus callback (``litellm_settings.callbacks: ["prometheus"]``),
which serves prometheus_client's default registry, where the provider registers its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
import yaml
from litellm_claude_code.testing import FakeAnthropicServer, directive

from tests.support.stack import EXAMPLES, MASTER_KEY, Proxy, start_proxy, stop_proxy, wait_until

pytestmark = pytest.mark.integration

HEADERS = {"Authorization": f"Bearer {MASTER_KEY}"}


@pytest.fixture(scope="module")
def metrics_proxy(upstream: FakeAnthropicServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    workdir = tmp_path_factory.mktemp("metrics-proxy")
    config = yaml.safe_load((EXAMPLES / "proxy_config.yaml").read_text())
    config["litellm_settings"]["callbacks"] = ["prometheus"]
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    proxy = start_proxy(path, workdir, upstream, {"LITELLM_CLAUDE_CODE_WARM_MAX": "1"})
    yield proxy
    stop_proxy(proxy)


def sample(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def scrape(proxy: Proxy) -> str:
    response = httpx.get(proxy.base_url + "/metrics/", headers=HEADERS, timeout=30, follow_redirects=True)
    assert response.status_code == 200, response.text
    return response.text


def test_provider_metrics_after_traffic(metrics_proxy: Proxy, fake: FakeAnthropicServer) -> None:
    for text in ("metrics one", "metrics two"):
        body = {"model": "sonnet", "messages": [{"role": "user", "content": text}]}
        response = httpx.post(metrics_proxy.base_url + "/v1/chat/completions", json=body, headers=HEADERS, timeout=60)
        assert response.status_code == 200, response.text
    failing = {"model": "sonnet", "messages": [{"role": "user", "content": directive(error={"status": 500})}]}
    response = httpx.post(metrics_proxy.base_url + "/v1/chat/completions", json=failing, headers=HEADERS, timeout=60)
    assert response.status_code >= 500, response.text
    # Requests end before their process is checked in or stopped: wait until none is busy.
    assert wait_until(lambda: sample(scrape(metrics_proxy), "claude_code_processes_busy") == 0, 15, interval=0.2)
    text = scrape(metrics_proxy)
    assert sample(text, "claude_code_requests_total", model="sonnet", status="200") == 2
    assert (sample(text, "claude_code_warm_requests_total", model="sonnet") or 0) >= 1
    assert (sample(text, "claude_code_cold_starts_total") or 0) >= 1
    assert (sample(text, "claude_code_errors_total") or 0) >= 1
    assert sample(text, "claude_code_time_to_first_token_seconds_count", model="sonnet") == 2
    assert sample(text, "claude_code_request_duration_seconds_count", model="sonnet") == 3
    assert sample(text, "claude_code_max_concurrency") is not None and sample(text, "claude_code_max_concurrency") > 0
    assert sample(text, "claude_code_warm_processes") in (0, 1), "more warm processes than WARM_MAX"
    assert sample(text, "claude_code_queue_depth") == 0
    assert sample(text, "claude_code_warm_floor") == 0  # WARM_MAX=1 leaves its one idle place to a chat
    assert sample(text, "claude_code_clean_processes") in (0, 1)
    assert sample(text, "claude_code_recent_peak_requests") == 1  # one request at a time
    assert 0 < (sample(text, "claude_code_warm_hit_rate") or 0) < 1
    # LiteLLM's own metrics are on the same page.
    assert re.search(r"^litellm_\w+", text, re.M), "LiteLLM's prometheus callback exported nothing"


def test_metrics_need_the_master_key(metrics_proxy: Proxy) -> None:
    response = httpx.get(metrics_proxy.base_url + "/metrics/", timeout=30, follow_redirects=True)
    assert response.status_code == 401, response.text[:500]
    wrong = httpx.get(
        metrics_proxy.base_url + "/metrics/",
        headers={"Authorization": "Bearer sk-wrong"},
        timeout=30,
        follow_redirects=True,
    )
    assert wrong.status_code == 401, wrong.text[:500]


def test_a_window_without_a_utilisation_makes_no_series() -> None:
    """``-`` (no window reported) or ``five_hour:rejected`` set no gauge: no series at 0 appears."""
    from dataclasses import dataclass

    from litellm_claude_code import _metrics
    from prometheus_client import REGISTRY

    @dataclass
    class Record:
        model: str = "sonnet"
        status: int = 200
        warm: bool = True
        cold_reason: str | None = None
        ttft_ms: float | None = 10.0
        total_ms: float = 20.0
        rate_limit: str | None = None

    for field in ("-", "five_hour:rejected", "", "seven_day:0.25"):
        _metrics.observe(Record(rate_limit=field))
    windows = {
        sample.labels["window"]: sample.value
        for family in REGISTRY.collect()
        if family.name == "claude_code_subscription_window_utilization"
        for sample in family.samples
    }
    assert windows == {"seven_day": 0.25}
