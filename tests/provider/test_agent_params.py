"""Reasoning, stop strings, refused parameters and subscription windows through the real proxy.

The official ``openai`` client talks to ``litellm --config examples/proxy_config.yaml``; the
provider runs the bundled CLI against the fake upstream, which each test scripts with a
directive in the prompt. Assertions are on what the client got and on what the upstream saw.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from litellm_claude_code.testing import FakeAnthropicServer, directive

from tests.support.proxy_http import HTTP_TIMEOUT, assert_no_traceback, error_message, log_fields, post, user
from tests.support.stack import EXAMPLES, MASTER_KEY, Proxy, start_proxy, stop_proxy, wait_until
from tests.support.upstream import marked

pytestmark = pytest.mark.integration


def client(proxy: Proxy) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.base_url + "/v1", api_key=MASTER_KEY, max_retries=0, timeout=HTTP_TIMEOUT)


# --------------------------------------------------------------------------- reasoning


def test_reasoning_streams_before_the_answer(proxy: Proxy, fake: FakeAnthropicServer) -> None:
    prompt = "think 7d1f " + directive(thinking="first I add, then I check", text="the answer is 4")
    stream = client(proxy).chat.completions.create(
        model="sonnet", messages=user(prompt), reasoning_effort="high", stream=True
    )
    order: list[tuple[str, str]] = []
    for chunk in stream:
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        reasoning = (delta.model_extra or {}).get("reasoning_content")
        if reasoning:
            order.append(("reasoning", reasoning))
        if delta.content:
            order.append(("text", delta.content))
    kinds = [kind for kind, _ in order]
    assert kinds.index("text") > max(i for i, kind in enumerate(kinds) if kind == "reasoning")
    assert "".join(v for k, v in order if k == "reasoning") == "first I add, then I check"
    assert "".join(v for k, v in order if k == "text") == "the answer is 4"
    (request,) = marked(fake, "think 7d1f")
    assert request["body"]["output_config"]["effort"] == "high"  # bound late on the process
    assert request["body"]["thinking"]["type"] in ("adaptive", "enabled")


def test_reasoning_on_a_plain_answer_and_in_usage(proxy: Proxy, fake: FakeAnthropicServer) -> None:
    prompt = "think 93aa " + directive(thinking="one two three four", text="done")
    response = client(proxy).chat.completions.create(model="sonnet", messages=user(prompt), reasoning_effort="low")
    message = response.choices[0].message
    assert message.content == "done"
    assert (message.model_extra or {}).get("reasoning_content") == "one two three four"
    assert response.usage is not None and response.usage.completion_tokens >= 5  # 4 thinking + 1 text
    (request,) = marked(fake, "think 93aa")
    assert request["body"]["output_config"]["effort"] == "low"


def test_the_effort_of_a_warm_process_is_rebound_per_request(proxy: Proxy, fake: FakeAnthropicServer) -> None:
    openai_client = client(proxy)
    for marker, effort in (("eff 1a", "high"), ("eff 2b", None), ("eff 3c", "low")):
        extra = {"reasoning_effort": effort} if effort else {}
        openai_client.chat.completions.create(model="haiku", messages=user(marker), **extra)
        (request,) = marked(fake, marker)
        assert request["body"]["output_config"]["effort"] == (effort or "medium")  # None: the CLI's default


def test_litellms_thinking_parameter_is_accepted(proxy: Proxy, fake: FakeAnthropicServer) -> None:
    prompt = "think 55c0 " + directive(thinking="hm", text="ok")
    response = client(proxy).chat.completions.create(
        model="sonnet", messages=user(prompt), extra_body={"thinking": {"type": "enabled", "budget_tokens": 2048}}
    )
    assert (response.choices[0].message.model_extra or {}).get("reasoning_content") == "hm"


def test_a_bad_reasoning_effort_is_a_400(proxy: Proxy, fake: FakeAnthropicServer) -> None:
    response = post(proxy, {"model": "sonnet", "messages": user("x"), "reasoning_effort": "extreme"})
    assert response.status_code == 400
    assert "reasoning_effort must be one of" in error_message(response)
    assert not fake.messages_requests()


# --------------------------------------------------------------------------- stop


@pytest.mark.parametrize("stream", [False, True])
def test_stop_cuts_the_answer_and_stops_the_cli_turn(proxy: Proxy, fake: FakeAnthropicServer, stream: bool) -> None:
    words = " ".join(f"w{i}" for i in range(40))
    marker = f"stop b7e{int(stream)}"
    prompt = marker + " " + directive(text="alpha beta STOP " + words, token_delay=0.1)
    started = time.monotonic()
    kwargs: dict[str, Any] = {"model": "sonnet", "messages": user(prompt), "stop": ["STOP"]}
    if stream:
        chunks = list(client(proxy).chat.completions.create(**kwargs, stream=True))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    else:
        response = client(proxy).chat.completions.create(**kwargs)
        text, finish = response.choices[0].message.content or "", [response.choices[0].finish_reason]
        assert response.usage is not None and response.usage.prompt_tokens > 0  # the prompt was paid for
    elapsed = time.monotonic() - started
    assert text == "alpha beta "
    assert finish == ["stop"]
    assert elapsed < 40 * 0.1  # the client did not wait for the rest of the answer
    # The CLI's turn was stopped: its upstream stream was closed early, and nothing followed.
    assert wait_until(lambda: marked(fake, marker)[0]["outcome"] is not None, 10)
    time.sleep(1)
    requests = marked(fake, marker)
    assert len(requests) == 1
    assert requests[0]["outcome"] == "client_disconnected"
    # The process is reusable: the next request on the proxy is answered.
    again = client(proxy).chat.completions.create(model="sonnet", messages=user("after stop " + directive(text="ok")))
    assert again.choices[0].message.content == "ok"


# --------------------------------------------------------------------------- refused parameters


def test_a_parameter_claude_code_cannot_honour_is_refused_by_name(proxy: Proxy, fake: FakeAnthropicServer) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client(proxy).chat.completions.create(model="sonnet", messages=user("x"), logprobs=True)
    assert info.value.status_code == 400
    assert "logprobs: not available through Claude Code" in str(info.value)
    assert "drop_params" in str(info.value)
    response = post(proxy, {"model": "sonnet", "messages": user("x"), "logit_bias": {"50256": -100}})
    assert response.status_code == 400
    assert "logit_bias: not available through Claude Code" in error_message(response)
    assert_no_traceback(response.text)
    assert not fake.messages_requests()


def test_the_request_may_drop_such_parameters(proxy: Proxy, fake: FakeAnthropicServer) -> None:
    response = client(proxy).chat.completions.create(
        model="sonnet",
        messages=user("dropped 4c1d " + directive(text="fine")),
        logprobs=True,
        top_logprobs=2,
        extra_body={"drop_params": True},
    )
    assert response.choices[0].message.content == "fine"
    assert "dropped parameters not available through Claude Code: logprobs, top_logprobs" in proxy.log_text()


def test_response_format_is_honoured_whatever_drop_params_says(proxy: Proxy, fake: FakeAnthropicServer) -> None:
    """Never dropped: with ``drop_params`` the answer is still JSON (test_structured_output.py has the rest)."""
    body = {"model": "sonnet", "messages": user("x"), "response_format": {"type": "json_object"}, "drop_params": True}
    response = post(proxy, body)
    assert response.status_code == 200, response.text
    assert isinstance(json.loads(response.json()["choices"][0]["message"]["content"]), dict)
    (request,) = fake.messages_requests()
    assert [t["name"] for t in request["body"]["tools"]] == ["StructuredOutput"]


# --------------------------------------------------------------------------- subscription windows


@pytest.fixture(scope="module")
def subscription_proxy(upstream: FakeAnthropicServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    """The example config with a subscription token: the upstream reports its windows."""
    proxy = start_proxy(
        EXAMPLES / "proxy_config.yaml",
        tmp_path_factory.mktemp("subscription-proxy"),
        upstream,
        {"CLAUDE_CODE_OAUTH_TOKEN": "sk-ant-oat01-fake-subscription", "LITELLM_CLAUDE_CODE_WARM_MAX": "1"},
    )
    yield proxy
    stop_proxy(proxy)


def test_the_log_line_shows_a_window_filling_up(subscription_proxy: Proxy, fake: FakeAnthropicServer) -> None:
    prompt = "window " + directive(text="ok", rate_limit={"window": "five_hour", "utilization": 0.82})
    response = post(subscription_proxy, {"model": "sonnet", "messages": user(prompt)})
    assert response.status_code == 200, response.text
    fields = log_fields(subscription_proxy, response.headers["x-litellm-call-id"])
    assert fields["rate_limit"] == "five_hour:0.82"


@pytest.mark.parametrize("stream", [False, True])
def test_a_full_window_is_429_until_its_reset(
    subscription_proxy: Proxy, fake: FakeAnthropicServer, stream: bool
) -> None:
    limit = {"window": "five_hour", "utilization": 1.0, "status": "rejected", "reset_in": 1800}
    error = {"status": 429, "type": "rate_limit_error", "message": "usage limit"}
    prompt = "full window " + directive(error=error, rate_limit=limit)
    response = post(subscription_proxy, {"model": "sonnet", "messages": user(prompt), "stream": stream})
    assert response.status_code == 429
    assert 1700 <= int(response.headers["retry-after"]) <= 1800
    message = error_message(response)
    assert "5-hour usage limit (five_hour) is reached" in message
    assert_no_traceback(response.text)
    fields = log_fields(subscription_proxy, response.headers["x-litellm-call-id"])
    assert fields["status"] == "429" and fields["rate_limit"] == "five_hour:1.00"
    assert len(marked(fake, "full window")) == 1  # no retry spent on a full window


def test_config_declares_reasoning_for_every_model() -> None:
    import yaml

    config = yaml.safe_load(Path(EXAMPLES / "proxy_config.yaml").read_text())
    for entry in config["model_list"]:
        assert set(entry["litellm_params"]["allowed_openai_params"]) == {"reasoning_effort", "thinking"}
