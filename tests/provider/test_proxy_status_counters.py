"""The status playbook's request counters over the log lines of a real proxy run.

A known number of successes, upstream authentication failures (the provider answers 401)
and upstream server errors (5xx) go through the real proxy (the session ``proxy`` fixture);
the lines the proxy wrote meanwhile are run through the awk program taken from
``template/ansible/status.yml`` (the program the playbook runs over the journal on the
hosts), and its counters must match what was sent.
"""

from __future__ import annotations

import openai
import pytest
from litellm_claude_code.testing import FakeAnthropicServer, directive

from tests.support.stack import Proxy, wait_until
from tests.support.status_awk import AWKS, counters

pytestmark = [pytest.mark.integration, pytest.mark.skipif(not AWKS, reason="no awk on this machine")]

OK, UNAUTHORIZED, SERVER_ERRORS = 3, 2, 2


def ask(proxy: Proxy, text: str, *, stream: bool = False) -> int:
    """The status the client saw."""
    messages = [{"role": "user", "content": text}]
    try:
        response = proxy.client().chat.completions.create(model="haiku", messages=messages, stream=stream)
        if stream:
            for _ in response:  # type: ignore[union-attr]
                pass
    except openai.APIStatusError as error:
        return int(error.status_code)
    return 200


def test_the_status_counters_match_the_traffic_sent(proxy: Proxy, fake: FakeAnthropicServer) -> None:
    start = proxy.log.stat().st_size
    seen = [ask(proxy, f"counters ok {i}", stream=i == 0) for i in range(OK)]
    seen += [ask(proxy, f"counters 401 {i} {directive(error={'status': 401})}") for i in range(UNAUTHORIZED)]
    seen += [
        ask(proxy, f"counters 5xx {i} {directive(error={'status': 500})}", stream=i == 1) for i in range(SERVER_ERRORS)
    ]
    assert seen[:OK] == [200] * OK
    assert seen[OK : OK + UNAUTHORIZED] == [401] * UNAUTHORIZED
    assert all(500 <= status < 600 for status in seen[OK + UNAUTHORIZED :]), seen

    def written() -> str:
        with proxy.log.open("rb") as log:
            log.seek(start)
            return log.read().decode(errors="replace")

    sent = OK + UNAUTHORIZED + SERVER_ERRORS
    assert wait_until(lambda: written().count("claude_code_request ") >= sent, 15), written()[-3000:]
    text = written()
    for awk in AWKS:
        found = counters(awk, text)
        assert found["RequestsLastHour"] == str(sent), (awk, found)
        assert found["Status4xxLastHour"] == str(UNAUTHORIZED), (awk, found)
        assert found["Status5xxLastHour"] == str(SERVER_ERRORS), (awk, found)
