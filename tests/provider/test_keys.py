"""Keys per person through a real ``litellm`` proxy: the store, the auth hook and LiteLLM's limiter.

The proxy runs ``examples/proxy_config.yaml`` (whose ``custom_auth`` is our hook) with
``LITELLM_CLAUDE_CODE_KEYS_FILE`` naming a store that the tests edit with the keys CLI while
the proxy runs, as an operator would.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litellm_claude_code.keys import KeyRecord, KeyStore, hash_key, load_records, main, write_records
from litellm_claude_code.testing import FakeAnthropicServer

from tests.support.keys import keys_cli
from tests.support.stack import EXAMPLES, MASTER_KEY, Proxy, start_proxy, stop_proxy

HTTP_TIMEOUT = 60.0


def issue(store: Path, name: str, *args: str) -> str:
    done = keys_cli(store, "add", "--name", name, *args)
    assert done.returncode == 0, done.stderr
    key = done.stdout.strip()
    assert key.startswith("sk-cc-") and len(key) > 40
    return key


def chat(proxy: Proxy, key: str, model: str = "sonnet", text: str = "hello", **extra: Any) -> httpx.Response:
    return httpx.post(
        proxy.base_url + "/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": text}], **extra},
        headers={"Authorization": f"Bearer {key}"},
        timeout=HTTP_TIMEOUT,
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys") / "keys.json"


@pytest.fixture(scope="module")
def keyed_proxy(
    upstream: FakeAnthropicServer, store: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Proxy]:
    write_records(store, [])
    proxy = start_proxy(
        EXAMPLES / "proxy_config.yaml",
        tmp_path_factory.mktemp("keyed-proxy"),
        upstream,
        {"LITELLM_CLAUDE_CODE_KEYS_FILE": str(store), "LITELLM_CLAUDE_CODE_WARM_MAX": "1"},
    )
    yield proxy
    stop_proxy(proxy)


# --------------------------------------------------------------------------- the store (unit)


def test_store_keeps_only_hashes_and_is_not_world_readable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "keys.json"
    assert main(["add", "--name", "bob", "--models", "sonnet,haiku", "--rpm", "5", "--store", str(store)]) == 0
    key = capsys.readouterr().out.strip()
    text = store.read_text()
    assert key not in text and hash_key(key) in text
    assert store.stat().st_mode & 0o777 == 0o640
    (record,) = load_records(store)
    assert record.models == ("sonnet", "haiku") and record.rpm == 5
    assert main(["list", "--store", str(store)]) == 0
    listing = capsys.readouterr().out
    assert "bob\tactive" in listing and key not in listing and hash_key(key) not in listing
    assert main(["add", "--name", "bob", "--store", str(store)]) == 2, "a second key under one name"


def test_store_rereads_a_replaced_file_and_survives_a_broken_one(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    write_records(path, [KeyRecord(name="a", sha256=hash_key("ka"))])
    store = KeyStore(path)
    assert store.find("ka") is not None and store.find("kb") is None
    write_records(path, [KeyRecord(name="b", sha256=hash_key("kb"))])
    assert store.find("ka") is None and store.find("kb") is not None
    path.write_text("{not json")
    assert store.find("kb") is not None, "a broken file must keep the last good store"


def test_bad_entries_are_refused_at_load(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"keys": [{"name": "x", "sha256": hash_key("k"), "rpm": 0}]}))
    with pytest.raises(ValueError, match="positive integer"):
        load_records(path)


# --------------------------------------------------------------------------- through the proxy


@pytest.mark.integration
def test_unknown_key_is_401_and_never_reaches_the_upstream(keyed_proxy: Proxy, fake: FakeAnthropicServer) -> None:
    response = chat(keyed_proxy, "sk-cc-not-a-key")
    assert response.status_code == 401, response.text
    assert fake.messages_requests() == []


@pytest.mark.integration
def test_valid_key_streams_and_master_key_still_works(
    keyed_proxy: Proxy, store: Path, fake: FakeAnthropicServer
) -> None:
    key = issue(store, "streamer")
    with httpx.stream(
        "POST",
        keyed_proxy.base_url + "/v1/chat/completions",
        json={"model": "sonnet", "messages": [{"role": "user", "content": "stream please"}], "stream": True},
        headers={"Authorization": f"Bearer {key}"},
        timeout=HTTP_TIMEOUT,
    ) as response:
        assert response.status_code == 200, response.read()
        lines = [line for line in response.iter_lines() if line.startswith("data:")]
    assert lines[-1] == "data: [DONE]" and len(lines) > 2
    assert chat(keyed_proxy, MASTER_KEY).status_code == 200
    assert key not in keyed_proxy.log_text(), "a person's key reached the proxy log"


@pytest.mark.integration
def test_expired_key_is_401(keyed_proxy: Proxy, store: Path) -> None:
    key = issue(store, "past", "--expires", "2020-01-01")
    response = chat(keyed_proxy, key)
    assert response.status_code == 401 and "expired" in response.text, response.text


@pytest.mark.integration
def test_wrong_alias_is_403(keyed_proxy: Proxy, store: Path, fake: FakeAnthropicServer) -> None:
    key = issue(store, "haiku-only", "--models", "haiku")
    response = chat(keyed_proxy, key, model="sonnet")
    assert response.status_code == 403 and "haiku" in response.text, response.text
    assert fake.messages_requests() == []
    assert chat(keyed_proxy, key, model="haiku").status_code == 200


@pytest.mark.integration
def test_revoked_while_running_is_401_without_restart(keyed_proxy: Proxy, store: Path) -> None:
    key = issue(store, "leaver")
    assert chat(keyed_proxy, key).status_code == 200
    pid = keyed_proxy.process.pid
    done = keys_cli(store, "revoke", "--name", "leaver")
    assert done.returncode == 0, done.stderr
    response = chat(keyed_proxy, key)
    assert response.status_code == 401 and "revoked" in response.text, response.text
    assert keyed_proxy.process.pid == pid and keyed_proxy.process.poll() is None


@pytest.mark.integration
def test_rpm_limit_is_429_with_retry_after(keyed_proxy: Proxy, store: Path) -> None:
    key = issue(store, "limited", "--rpm", "2")
    statuses = [chat(keyed_proxy, key, text=f"limit {i}") for i in range(3)]
    assert [r.status_code for r in statuses] == [200, 200, 429], [r.text for r in statuses]
    assert int(statuses[2].headers["retry-after"]) > 0
    other = issue(store, "unlimited")
    assert chat(keyed_proxy, other).status_code == 200, "one key's limit held another key back"


# --------------------------------------------------------------------------- tenants on every API


def _ask(proxy: Proxy, key: str, api: str, text: str) -> httpx.Response:
    """One request of ``api`` ("chat", "messages" or "responses") with ``key``."""
    headers = {"Authorization": f"Bearer {key}"}
    if api == "messages":
        path, body = (
            "/v1/messages",
            {"model": "sonnet", "max_tokens": 50, "messages": [{"role": "user", "content": text}]},
        )
    elif api == "responses":
        path, body = "/v1/responses", {"model": "sonnet", "input": text}
    else:
        path, body = "/v1/chat/completions", {"model": "sonnet", "messages": [{"role": "user", "content": text}]}
    return httpx.post(proxy.base_url + path, json=body, headers=headers, timeout=HTTP_TIMEOUT)


@pytest.mark.integration
@pytest.mark.parametrize("api", ["chat", "messages", "responses"])
def test_two_keys_never_share_a_process_on_any_api(
    keyed_proxy: Proxy, store: Path, fake: FakeAnthropicServer, api: str
) -> None:
    """The proxy runs WARM_MAX=1: a key's second request reuses its own idle process, another
    key's request never does (a request whose key LiteLLM did not pass on would be served as a
    shared tenant and take it)."""
    from tests.support.upstream import served_by

    first, second = issue(store, f"tenant-a-{api}"), issue(store, f"tenant-b-{api}")
    marks = {}
    for who, key in (("a1", first), ("a2", first), ("b1", second)):
        mark = f"TENANT-{api}-{who}"
        answer = _ask(keyed_proxy, key, api, mark)
        assert answer.status_code == 200, answer.text
        marks[who] = mark
        # The pool takes the process back right after the answer; a2 == a1 shows this wait is enough.
        time.sleep(1.5)
    sessions = {}
    for who, mark in marks.items():
        (request,) = [r for r in fake.messages_requests() if mark in json.dumps(r["body"])]
        sessions[who] = served_by(request)
    assert sessions["a1"] == sessions["a2"], "a key's second request did not reuse its own warm process"
    assert sessions["b1"] != sessions["a1"], f"{api}: another key's request was served by the first key's process"


def test_a_proxy_request_without_a_key_hash_is_a_tenant_of_its_own() -> None:
    """Fails closed: no shared tenant for a proxy request whose key hash is missing."""
    from litellm_claude_code._provider import _tenant

    proxied = {"proxy_server_request": {"url": "http://gw/v1/messages"}, "metadata": {}}
    first, second = _tenant(proxied), _tenant(dict(proxied))
    assert first and second and first != second, "a proxy request without a key hash joined a shared tenant"
    keyed = {"litellm_metadata": {"user_api_key_hash": "abc"}, "proxy_server_request": {"url": "x"}}
    assert _tenant(keyed) == _tenant({"metadata": {"user_api_key_hash": "abc"}}) != ""
    assert _tenant(None) == _tenant({}) == "", "a library call outside the proxy is the one shared tenant"


def test_a_key_limit_lists_aliases_patterns_and_what_the_gateway_says_an_alias_covers() -> None:
    """Aliases match exactly, ``*`` entries as patterns, and ``covers`` (the proxy's family rule) the rest."""
    from litellm_claude_code.keys import KeyRecord

    key = KeyRecord(name="k", sha256="0" * 64, models=("haiku", "claude-sonnet-4-*"))
    assert key.allows("haiku") and not key.allows("opus")
    assert key.allows("claude-sonnet-4-5") and not key.allows("claude-sonnet-5-5")
    assert not key.allows("claude-haiku-4-5")

    def covers(entry: str, model: str) -> bool:
        return entry == "haiku" and model.startswith("claude-haiku-")

    assert key.allows("claude-haiku-4-5", covers) and not key.allows("claude-opus-4-8", covers)
    assert KeyRecord(name="all", sha256="0" * 64).allows("anything")
