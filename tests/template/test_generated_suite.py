"""The generated project's own test suite, run from here against Docker, passes.

For each answer set: render the template (from the tagged copy of the working tree), fill the
project's wheelhouse with its own ``make wheelhouse`` (containers cannot be assumed to reach a
registry), then run the project's own ``python -m pytest`` in its directory, as its CI would:
the suite builds the gateway image once from the generated Dockerfile on the local Debian base
image, starts the fake Anthropic upstream and the proxy on a private Docker network, and drives
them with the official openai client. We read its JUnit report and summary line: no failure, no
error, no skip (the opt-in live test is deselected), and enough end-to-end tests passed that an empty run
cannot pass.

Every container, network and image the run creates carries the label ``<slug>.test-run=<id>``
(``LCC_TEST_RUN_ID``); they are removed afterwards, also when the run fails or times out:
containers and networks after each run, images at the end of the module.

The second answer set shares the project slug and package source with the defaults, so its
image build reuses the heavy dependency layer of the first one (same Dockerfile up to that
layer, same wheelhouse, same virtualenv path): each image is built once, its dependencies once.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.docker import BUILD_BASE_IMAGES, require_docker
from tests.support.wheelhouse import fill_wheelhouse

pytestmark = pytest.mark.docker

BASE_IMAGE = os.environ.get("LCC_BASE_IMAGE") or "litellm-claude-code/base:bookworm"
SUITE_TIMEOUT = 1800
# End-to-end tests of tests/test_gateway.py that must pass (it has ~16 plus one per alias).
MIN_DOCKER_PASSED = 15
# Credentials that would turn the opt-in live test on, or reach the real API.
CREDENTIAL_VARS = ("CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL")

SUITE_ANSWERS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "api-key-full-model-id": {
        "model_aliases": {"claude-sonnet": "claude-sonnet-4-5", "fast": "haiku"},
        "default_model": "fast",
        "provider_name": "claude-cli",
        "auth_method": "api_key",
        "listen_port": 8080,
    },
}


# tests/test_compose.py (docker-compose.yml: up, a person's key streams, Prometheus scrapes, down)
# runs in one answer set: it adds about two minutes, and the file differs between the sets only
# in the port, which the render tests check.
COMPOSE_SUITE = "defaults"
COMPOSE_TESTS = (
    "test_a_persons_key_streams_through_the_compose_gateway",
    "test_prometheus_scraped_the_gateway",
    "test_every_dashboard_query_is_valid_promql",
    "test_redis_needs_its_password_and_shows_it_nowhere",
    "test_only_loopback_ports_are_published",
)


def docker_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def base_image() -> str:
    """The local Debian base image (debootstrapped when missing: no registry is reachable)."""
    require_docker()
    if docker_cli("image", "inspect", BASE_IMAGE).returncode != 0:
        done = subprocess.run(
            ["bash", str(BUILD_BASE_IMAGES)],
            env={**os.environ, "LCC_BASE_IMAGE": BASE_IMAGE},
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert done.returncode == 0, f"building {BASE_IMAGE} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert docker_cli("image", "inspect", BASE_IMAGE).returncode == 0, f"{BASE_IMAGE} is missing"
    return BASE_IMAGE


@dataclass
class SuiteRun:
    project: Path
    slug: str
    run_id: str
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    summary: dict[str, int]
    outcomes: dict[str, str]  # "tests.test_gateway::test_x[param]" -> passed | failed | error | skipped
    skip_reasons: dict[str, str]
    images_before: set[str]
    images_built: list[str] = field(default_factory=list)
    build_seconds: float | None = None  # as the generated conftest reported it
    answers_id: str = ""  # the SUITE_ANSWERS key

    def tail(self) -> str:
        return f"{self.stdout[-6000:]}\n--- stderr ---\n{self.stderr[-3000:]}"


def parse_summary(stdout: str) -> dict[str, int]:
    """pytest's last line, e.g. '54 passed, 1 skipped in 132.38s' -> {'passed': 54, 'skipped': 1}."""
    lines = [line for line in stdout.splitlines() if re.search(r"\b(passed|failed|error|errors|skipped)\b", line)]
    if not lines:
        return {}
    counts: dict[str, int] = {}
    for number, word in re.findall(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected)", lines[-1]):
        counts["error" if word.startswith("error") else word] = int(number)
    return counts


def parse_junit(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    outcomes: dict[str, str] = {}
    reasons: dict[str, str] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        key = f"{case.get('classname')}::{case.get('name')}"
        outcome = "passed"
        for child in case:
            if child.tag in {"failure", "error", "skipped"}:
                outcome = {"failure": "failed"}.get(child.tag, child.tag)
                reasons[key] = child.get("message", "")
                break
        # A test can be reported twice (a teardown error after a pass): the worst outcome wins.
        if outcomes.get(key) in {"failed", "error"}:
            continue
        outcomes[key] = outcome
    return outcomes, reasons


def label_filter(slug: str, run_id: str) -> str:
    return f"label={slug}.test-run={run_id}"


def gateway_images(slug: str, *filters: str) -> set[str]:
    listed = docker_cli(
        "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", "--filter", f"reference={slug}-test", *filters
    )
    return {line for line in listed.stdout.split() if line}


def cleanup(slug: str, run_id: str, *, images: bool = True) -> None:
    """Remove what the run created: containers, then networks, then (``images``) the images it built."""
    flt = label_filter(slug, run_id)
    containers = docker_cli("ps", "-aq", "--filter", flt).stdout.split()
    if containers:
        docker_cli("rm", "-f", "-v", *containers)
    networks = docker_cli("network", "ls", "-q", "--filter", flt).stdout.split()
    if networks:
        docker_cli("network", "rm", *networks)
    built = docker_cli("image", "ls", "-q", "--filter", flt).stdout.split() if images else []
    if built:
        docker_cli("image", "rm", "-f", *sorted(set(built)), timeout=300)


def project_slug(project: Path) -> str:
    return str(yaml.safe_load((project / ".copier-answers.yml").read_text())["project_slug"])


def run_generated_suite(project: Path, base: str, tmp: Path, run_id: str, extra_args: tuple[str, ...] = ()) -> SuiteRun:
    slug = project_slug(project)
    junit = tmp / "junit.xml"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PYTEST_") and key not in CREDENTIAL_VARS and not key.endswith("_TOKEN_FILE")
    }
    env.update(
        CI="true",
        LCC_BASE_IMAGE=base,
        LCC_PACKAGE_SOURCE="wheelhouse",
        LCC_TEST_RUN_ID=run_id,
        TESTCONTAINERS_RYUK_DISABLED="true",
        LITELLM_LOCAL_MODEL_COST_MAP="True",
    )
    # junit_logging: the report keeps the captured output (the image build time is in it).
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--junitxml={junit}",
        "-o",
        "junit_logging=system-out",
        *extra_args,
    ]
    images_before = gateway_images(slug)
    started = time.monotonic()
    proc = subprocess.Popen(
        cmd, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = proc.communicate(timeout=SUITE_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=60)
        cleanup(slug, run_id)
        pytest.fail(f"the generated suite did not finish within {SUITE_TIMEOUT} s:\n{stdout[-6000:]}\n{stderr[-3000:]}")
    seconds = time.monotonic() - started
    images_built = sorted(gateway_images(slug, "--filter", label_filter(slug, run_id)))
    outcomes, reasons = parse_junit(junit) if junit.exists() else ({}, {})
    built = re.search(r"built \S+ in (\d+) s", junit.read_text()) if junit.exists() else None
    return SuiteRun(
        project=project,
        slug=slug,
        run_id=run_id,
        returncode=proc.returncode,
        stdout=stdout,
        stderr=stderr,
        seconds=seconds,
        summary=parse_summary(stdout),
        outcomes=outcomes,
        skip_reasons=reasons,
        images_before=images_before,
        images_built=images_built,
        build_seconds=float(built.group(1)) if built else None,
    )


@pytest.fixture(scope="module")
def image_janitor() -> Iterator[list[tuple[str, str]]]:
    """(slug, run id) of each run: their images are removed when the module ends, not before,
    so that a later build reuses the dependency layer of an earlier one."""
    runs: list[tuple[str, str]] = []
    yield runs
    for slug, run_id in runs:
        cleanup(slug, run_id)


@pytest.fixture(scope="module", params=list(SUITE_ANSWERS), ids=list(SUITE_ANSWERS))
def suite_run(
    request: pytest.FixtureRequest,
    base_image: str,
    render_project: Any,
    image_janitor: list[tuple[str, str]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[SuiteRun]:
    answers = SUITE_ANSWERS[request.param]
    project = render_project(answers, name=f"suite-{request.param}")
    started = time.monotonic()
    fill_wheelhouse(project)
    wheelhouse_seconds = time.monotonic() - started
    run_id = uuid.uuid4().hex[:12]
    image_janitor.append((project_slug(project), run_id))
    extra = () if request.param == COMPOSE_SUITE else ("--deselect", "tests/test_compose.py")
    result = run_generated_suite(project, base_image, tmp_path_factory.mktemp(f"suite-{request.param}"), run_id, extra)
    result.answers_id = request.param
    print(
        f"\n[{request.param}] wheelhouse {wheelhouse_seconds:.0f} s, generated suite {result.seconds:.0f} s "
        f"(image build {result.build_seconds} s): {json.dumps(result.summary)}, images built {result.images_built}"
    )
    try:
        yield result
    finally:
        cleanup(result.slug, result.run_id, images=False)


def test_generated_suite_passes(suite_run: SuiteRun) -> None:
    run = suite_run
    assert run.returncode == 0, f"the generated suite exited {run.returncode}:\n{run.tail()}"
    assert run.summary, f"no pytest summary line in the output:\n{run.tail()}"
    assert run.summary.get("failed", 0) == 0, run.tail()
    assert run.summary.get("error", 0) == 0, run.tail()
    assert run.outcomes, f"no JUnit report:\n{run.tail()}"
    assert sum(1 for o in run.outcomes.values() if o == "passed") == run.summary.get("passed"), run.summary
    bad = {k: o for k, o in run.outcomes.items() if o in {"failed", "error"}}
    assert not bad, f"{bad}\n{run.tail()}"


def test_nothing_skips_and_the_live_test_is_deselected(suite_run: SuiteRun) -> None:
    skipped = {k: suite_run.skip_reasons.get(k, "") for k, o in suite_run.outcomes.items() if o == "skipped"}
    assert not skipped, skipped
    assert suite_run.summary.get("skipped", 0) == 0, suite_run.summary
    # No credential is passed in: the live test is not run, and the header says why.
    assert not [k for k in suite_run.outcomes if k.startswith("tests.test_live::")], suite_run.outcomes
    assert suite_run.summary.get("deselected", 0) >= 1, suite_run.summary
    assert "live test deselected: " in suite_run.stdout and "is not set: the live test is opt-in" in suite_run.stdout, (
        suite_run.stdout[:2000]
    )


def test_end_to_end_tests_really_ran(suite_run: SuiteRun) -> None:
    """An empty or mostly-deselected run cannot pass: each alias was routed through Docker."""
    passed = {k for k, o in suite_run.outcomes.items() if o == "passed"}
    docker_passed = {k for k in passed if k.startswith("tests.test_gateway::")}
    assert len(docker_passed) >= MIN_DOCKER_PASSED, sorted(docker_passed)
    config = yaml.safe_load((suite_run.project / "config" / "litellm.yaml").read_text())
    aliases = [entry["model_name"] for entry in config["model_list"] if "*" not in entry["model_name"]]
    for alias in aliases:
        assert f"tests.test_gateway::test_each_alias_routes_to_its_claude_model[{alias}]" in passed, alias
    for name in (
        "test_streaming_is_incremental",
        "test_stream_include_usage",
        "test_non_streaming",
        "test_wrong_master_key_is_401",
        "test_health_endpoints_need_no_key",
    ):
        assert f"tests.test_gateway::{name}" in passed, name
    faults = {k for k in passed if k.startswith("tests.test_gateway::test_upstream_faults_map_to_statuses[")}
    assert len(faults) >= 4, faults
    if suite_run.answers_id == COMPOSE_SUITE:
        for name in COMPOSE_TESTS:
            assert f"tests.test_compose::{name}" in passed, name


def test_gateway_image_built_once(suite_run: SuiteRun) -> None:
    """One image per run (the gateway and the fake upstream share it), tagged <slug>-test:<digest>."""
    built = suite_run.images_built
    if built:
        assert len(built) == 1, built
        assert re.fullmatch(rf"{re.escape(suite_run.slug)}-test:[0-9a-f]{{16}}", built[0]), built
    else:  # reused: an identical build context was built earlier and kept
        assert suite_run.images_before, "no image was built and none existed before the run"
