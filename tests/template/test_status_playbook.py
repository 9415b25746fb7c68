"""The status playbook's journal counters, run over sample log lines.

The awk program is taken from ``template/ansible/status.yml`` itself, so this test checks the
program the playbook runs on the hosts (the fleet suite runs the whole playbook; this one runs
in a second with no host). It runs under the system's ``awk`` (Debian's default is mawk, as on
the gateways) and every other awk found.
"""

from __future__ import annotations

import pytest

from tests.support.status_awk import AWKS, counters

LINES = """\
2026-12-02 00:24:56,986 INFO litellm_claude_code claude_code_request request_id=a model=sonnet stream=false \
status=200 warm=false cold_reason=no_idle conversation=new turns=1 queue_ms=2 warm_hit_rate=0.00
2026-12-02 00:24:57,223 INFO litellm_claude_code claude_code_request request_id=b model=sonnet stream=false \
status=200 warm=true cold_reason=- conversation=continued turns=3 queue_ms=0 warm_hit_rate=0.50
2026-12-02 00:24:57,300 INFO litellm_claude_code claude_code_request request_id=c model=sonnet stream=true \
status=200 warm=true cold_reason=- conversation=new turns=1 queue_ms=0 warm_hit_rate=0.67
2026-12-02 00:24:58,223 INFO litellm_claude_code claude_code_request request_id=d model=sonnet stream=true \
status=429 warm=false cold_reason=- conversation=- turns=1 queue_ms=30000 warm_hit_rate=0.67 error="All 4 slots"
2026-12-02 00:24:59,223 INFO litellm_claude_code claude_code_request request_id=e model=haiku stream=true \
status=502 warm=false cold_reason=evicted conversation=new turns=1 queue_ms=1 warm_hit_rate=0.50
2026-12-02 00:25:00,000 INFO litellm_claude_code claude_code_request request_id=f model=haiku stream=true \
status=200 warm=false cold_reason=no_idle conversation=new turns=1 queue_ms=1 warm_hit_rate=0.50
2026-12-02 00:25:01,000 INFO litellm_claude_code claude_code_limits max_concurrency=8 warm_max=8 auto=8
2026-12-02 00:25:02,000 ERROR litellm.proxy something else status=500 warm=false cold_reason=mismatch
"""


@pytest.fixture(params=AWKS)
def awk(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_there_is_an_awk() -> None:
    assert AWKS, "no awk on this machine"


def test_counts_requests_failures_warm_hits_and_cold_reasons(awk: str) -> None:
    found = counters(awk, LINES)
    reasons = dict(pair.split(":") for pair in found.pop("ColdReasonsLastHour").split(","))
    assert found == {
        "RequestsLastHour": "6",
        "Status4xxLastHour": "1",
        "Status5xxLastHour": "1",
        # 2 warm of the 5 requests that got a process (the 429 never did).
        "WarmHitRateLastHour": "0.40",
        "ColdStartsLastHour": "3",
    }
    assert reasons == {"no_idle": "2", "evicted": "1"}


def test_an_idle_hour_prints_zeros_and_no_rate(awk: str) -> None:
    assert counters(awk, "") == {
        "RequestsLastHour": "0",
        "Status4xxLastHour": "0",
        "Status5xxLastHour": "0",
        "WarmHitRateLastHour": "-",
        "ColdStartsLastHour": "0",
        "ColdReasonsLastHour": "-",
    }


def test_every_cold_reason_the_pool_gives_is_counted(awk: str) -> None:
    reasons = ("no_idle", "mismatch", "evicted", "disabled", "retry")
    text = "".join(f"x claude_code_request status=200 warm=false cold_reason={reason} turns=1\n" for reason in reasons)
    found = counters(awk, text)
    assert sorted(found["ColdReasonsLastHour"].split(",")) == sorted(f"{reason}:1" for reason in reasons)
    assert found["WarmHitRateLastHour"] == "0.00"
