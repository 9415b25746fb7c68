"""The generated Grafana dashboard queries only metrics and labels a real gateway exposes.

The project is rendered, its own ``config/litellm.yaml`` runs in the real LiteLLM proxy against
the fake Messages API with a subscription token (so the upstream reports its windows), and real
traffic goes through it with people's keys from the key store: streamed and not, an upstream
error, a per-key limit reached (429), cold and warm processes, a window's utilisation. Then
``/metrics`` is scraped and every PromQL expression of ``monitoring/grafana-dashboard.json``
(panels and variables) is parsed (``tests/support/promql.py``): each metric it selects must be
on the page, with every label it matches, groups by or shows in a legend.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from litellm_claude_code.testing import FakeAnthropicServer, directive

from tests.support import promql
from tests.support.stack import MASTER_KEY, Proxy, start_proxy, stop_proxy, wait_until
from tests.support.template import RenderFn

pytestmark = pytest.mark.integration


# How LiteLLM says a setting needs its Enterprise licence
# (litellm/types/proxy/common_proxy_errors.py, not_premium_user).
ENTERPRISE_ONLY = r"enterprise only feature|must be a LiteLLM Enterprise user|LITELLM_LICENSE"


def dashboard_of(project: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((project / "monitoring" / "grafana-dashboard.json").read_text())
    return data


def queries(dashboard: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(where, expression, legend) of every panel target and every variable."""
    found = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            found.append((panel["title"], target["expr"], target.get("legendFormat", "")))
    for var in dashboard["templating"]["list"]:
        selector, label = promql.label_values_query(var["query"]["query"])
        found.append((f"variable {var['name']}", f"count by ({label}) ({selector})", f"{{{{{label}}}}}"))
    return found


def add_key(store: Path, name: str, *extra: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "litellm_claude_code.keys", "add", "--store", str(store), "--name", name, *extra],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture(scope="module")
def scraped(render_project: RenderFn, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, str]]:
    """(project, the /metrics page after real traffic through the project's own proxy config, the proxy's log)."""
    project = render_project({}, name="dashboard")
    workdir = tmp_path_factory.mktemp("dashboard-proxy")
    store = workdir / "keys" / "keys.json"
    alice = add_key(store, "alice", "--team", "platform")
    bob = add_key(store, "bob", "--rpm", "1")
    env = {
        "LITELLM_CLAUDE_CODE_KEYS_FILE": str(store),
        # A subscription token: the fake upstream then sends the anthropic-ratelimit-unified-*
        # headers the CLI turns into the window utilisation the dashboard shows.
        "CLAUDE_CODE_OAUTH_TOKEN": "sk-ant-oat01-fake-dashboard",
        "LITELLM_CLAUDE_CODE_WARM_MAX": "1",
    }
    with FakeAnthropicServer() as upstream:
        proxy = start_proxy(project / "config" / "litellm.yaml", workdir, upstream, env)
        try:
            send_traffic(proxy, alice, bob)
            assert wait_until(lambda: "claude_code_processes_busy 0.0" in scrape(proxy), 20, interval=0.2)
            yield project, scrape(proxy), proxy.log_text()
        finally:
            stop_proxy(proxy)


def chat(proxy: Proxy, key: str, content: str, *, stream: bool = False) -> httpx.Response:
    body = {"model": "sonnet", "stream": stream, "messages": [{"role": "user", "content": content}]}
    return httpx.post(
        proxy.base_url + "/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=120,
    )


def send_traffic(proxy: Proxy, alice: str, bob: str) -> None:
    window = directive(text="ok then", rate_limit={"window": "five_hour", "utilization": 0.42})
    first = chat(proxy, alice, "cold start " + window)  # no warm process yet
    assert first.status_code == 200, first.text
    streamed = chat(proxy, alice, "warm and streamed", stream=True)
    assert streamed.status_code == 200 and "[DONE]" in streamed.text, streamed.text[-500:]
    plain = chat(proxy, alice, "warm and plain")
    assert plain.status_code == 200, plain.text
    failed = chat(proxy, alice, "upstream fails " + directive(error={"status": 500}))
    assert failed.status_code >= 500, failed.text
    assert chat(proxy, bob, "within bob's limit").status_code == 200
    limited = chat(proxy, bob, "over bob's limit")
    assert limited.status_code == 429, limited.text


def scrape(proxy: Proxy) -> str:
    response = httpx.get(proxy.base_url + "/metrics/", headers={"Authorization": f"Bearer {MASTER_KEY}"}, timeout=30)
    assert response.status_code == 200, response.text[:500]
    return response.text


def test_the_traffic_made_the_series_the_panels_need(scraped: tuple[Path, str, str]) -> None:
    """The scrape holds what the test meant to produce (else the check below proves little)."""
    _, text, _ = scraped
    exposed = promql.exposed_samples(text)
    assert 'window="five_hour"' in text and "claude_code_subscription_window_utilization" in exposed
    assert 'exception_status="429"' in text and 'api_key_alias="bob"' in text
    assert 'api_key_alias="alice"' in text and 'team="platform"' in text
    assert "claude_code_cold_starts_total" in exposed and "claude_code_warm_requests_total" in exposed
    assert "claude_code_errors_total" in exposed


def test_the_generated_config_asks_for_no_enterprise_feature(scraped: tuple[Path, str, str]) -> None:
    """A setting LiteLLM reserves for its Enterprise licence is not applied, only warned about on each
    request (max_request_size_mb was one: no limit, three log lines per request)."""
    _, _, log = scraped
    assert "claude_code_request" in log, log[-2000:]  # the log is the proxy's, and it saw the traffic
    warned = sorted({line.strip()[:200] for line in log.splitlines() if re.search(ENTERPRISE_ONLY, line, re.I)})
    assert not warned, warned


def test_every_dashboard_query_is_exposed(scraped: tuple[Path, str, str]) -> None:
    project, text, _ = scraped
    exposed = promql.exposed_samples(text)
    problems = {}
    checked = 0
    for where, expr, legend in queries(dashboard_of(project)):
        found = promql.check(expr, exposed, legend)
        checked += 1
        if found:
            problems[f"{where}: {expr}"] = found
    assert not problems, json.dumps(problems, indent=2)
    assert checked >= 25


def test_the_dashboard_imports_anywhere(default_project: Path) -> None:
    """One datasource input, used by every panel, target and variable; unique panel ids."""
    dashboard = dashboard_of(default_project)
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    assert dashboard["__inputs"][0]["pluginId"] == "prometheus"
    wanted = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
    ids = []
    for panel in dashboard["panels"]:
        ids.append(panel["id"])
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == wanted, panel["title"]
        assert panel["targets"], panel["title"]
        assert all(t["datasource"] == wanted for t in panel["targets"]), panel["title"]
    assert len(ids) == len(set(ids))
    assert all(v["datasource"] == wanted for v in dashboard["templating"]["list"])
    text = json.dumps(dashboard)
    for subject in (
        "api_key_alias",
        "requested_model",
        "claude_code_processes_busy",
        "claude_code_queue_depth",
        "claude_code_warm_processes",
        "claude_code_clean_processes",
        "claude_code_warm_floor",
        "claude_code_warm_hit_rate",
        "claude_code_cold_starts_total",
        "claude_code_time_to_first_token_seconds_bucket",
        "claude_code_errors_total",
        "claude_code_subscription_window_utilization",
        "litellm_spend_metric_total",
        "litellm_input_tokens_metric_total",
        "litellm_proxy_failed_requests_metric_total",
    ):
        assert subject in text, subject


# --------------------------------------------------------------------------- the checker itself


EXPOSED = {
    "up_total": {"code"},
    "lat_bucket": {"le", "model"},
    "lat_count": {"model"},
}


@pytest.mark.parametrize(
    ("expr", "legend", "problem"),
    [
        ('sum(rate(nope_total{code="1"}[$__rate_interval]))', "", "metric nope_total is not exposed"),
        ('rate(up_total{colour="red"}[5m])', "", "label 'colour' is not on up_total"),
        ("sum by (colour) (rate(up_total[5m]))", "", "sum by 'colour': up_total has no such label"),
        ("sum by (code) (rate(up_total[5m]))", "{{model}}", "legend label 'model'"),
        ("histogram_quantile(0.9, sum by (le) (rate(lat_bucket[5m])))", "{{model}}", "legend label 'model'"),
        ("rate(lat[5m])", "", "metric lat is not exposed"),
    ],
)
def test_the_checker_finds_what_is_missing(expr: str, legend: str, problem: str) -> None:
    problems = promql.check(expr, EXPOSED, legend)
    assert any(problem in p for p in problems), problems


@pytest.mark.parametrize(
    "expr",
    [
        'sum by (le, model) (rate(lat_bucket{instance=~"$instance"}[$__rate_interval]))',
        "sum(rate(lat_count[5m])) / sum(rate(up_total[5m])) * 100",
        "max(up_total) without (code)",
        "sum(rate(up_total[5m])) by (code)",
    ],
)
def test_the_checker_accepts_what_is_there(expr: str) -> None:
    assert promql.check(expr, EXPOSED, "") == []


@pytest.mark.parametrize("expr", ["mystery(up_total)", "sum(up_total", "up_total{code=1}", '{code="1"}'])
def test_the_checker_refuses_what_it_cannot_read(expr: str) -> None:
    with pytest.raises(promql.PromQLError):
        promql.check(expr, EXPOSED)


def test_the_scrape_examples_authenticate_from_a_file(project: Path) -> None:
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    fleet = yaml.safe_load((project / "monitoring" / "prometheus.yml").read_text())
    compose = yaml.safe_load((project / "monitoring" / "prometheus-compose.yml").read_text())
    for config, targets in (
        (fleet, [f"{host}:{answers['listen_port']}" for host in answers["gateway_hosts"]]),
        (compose, [f"gateway:{answers['listen_port']}"]),
    ):
        (job,) = config["scrape_configs"]
        assert job["metrics_path"] == "/metrics/"
        assert job["authorization"]["type"] == "Bearer"
        assert job["authorization"]["credentials_file"].startswith("/etc/prometheus/")
        assert "credentials" not in job["authorization"]
        assert [t for group in job["static_configs"] for t in group["targets"]] == targets
