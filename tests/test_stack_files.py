"""The Docker stack's files, checked without Docker: the compose files, ./demo, scripts/integration, the workflow.

Nothing here starts a container (this machine has no Docker engine); what can be proved statically is: the YAML
has the structure the stack needs, the scripts parse and call the CLI with arguments it accepts, they fail with a
clear message when Docker is missing, and every URL, key and version is spelled the same in every file.
"""

from __future__ import annotations

import re
import shlex
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from os_rerank.cli import SERVE_KEY_ID_ENV, SERVE_SECRET_ENV, build_parser
from tests.test_integration_bytes import RECORD_FILE

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = [REPO / "demo", REPO / "scripts" / "integration"]
DUMMY_KEY_ID, DUMMY_SECRET = "os-rerank-local", "os-rerank-local-secret"
BASH = shutil.which("bash") or "/bin/bash"


def _yaml(name: str) -> Any:
    return yaml.safe_load((REPO / name).read_text(encoding="utf-8"))


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _yaml("docker-compose.yml")["services"]


@pytest.fixture(scope="module")
def example() -> dict[str, Any]:
    return _yaml("config.example.yaml")


@pytest.fixture(scope="module")
def workflow_versions() -> list[str]:
    job = _yaml(".github/workflows/integration.yml")["jobs"]["opensearch"]
    return [str(v) for v in job["strategy"]["matrix"]["opensearch"]]


def _default_version(compose: dict[str, Any]) -> str:
    match = re.fullmatch(r"opensearchproject/opensearch:\$\{OPENSEARCH_VERSION:-(\d+\.\d+\.\d+)\}",
                         compose["opensearch"]["image"])
    assert match, compose["opensearch"]["image"]
    return match.group(1)


# --- docker-compose.yml -------------------------------------------------------------------------------------------


def test_opensearch_service_is_an_insecure_single_node_with_the_version_from_the_environment(compose) -> None:
    os_ = compose["opensearch"]
    assert _version(_default_version(compose)) >= (2, 12, 0)
    env = os_["environment"]
    # Both flags: on 2.12+ the demo installer runs before DISABLE_SECURITY_PLUGIN is read.
    assert env["DISABLE_INSTALL_DEMO_CONFIG"] == "true"
    assert env["DISABLE_SECURITY_PLUGIN"] == "true"
    assert "OPENSEARCH_INITIAL_ADMIN_PASSWORD" not in env
    assert env["discovery.type"] == "single-node"
    assert env["OPENSEARCH_JAVA_OPTS"] == "-Xms1g -Xmx1g"
    assert env["cluster.routing.allocation.disk.threshold_enabled"] == "false"
    assert os_["ulimits"] == {"memlock": {"soft": -1, "hard": -1}, "nofile": {"soft": 65536, "hard": 65536}}
    assert os_["ports"] == ["9200:9200"]
    # The connector's settings belong to `os-rerank setup`, not to the node's environment.
    assert not [k for k in env if k.startswith("plugins.ml_commons")]


def test_both_services_have_health_checks_so_up_wait_means_ready(compose) -> None:
    os_check = " ".join(compose["opensearch"]["healthcheck"]["test"])
    assert "curl -fsS" in os_check and "localhost:9200/_cluster/health?wait_for_status=yellow" in os_check
    ep_check = " ".join(compose["endpoint"]["healthcheck"]["test"])
    assert "http://localhost:8080/ping" in ep_check
    for service in compose.values():
        assert service["healthcheck"]["retries"] * _seconds(service["healthcheck"]["interval"]) >= 60


def _seconds(text: str) -> int:
    match = re.fullmatch(r"(\d+)s", text)
    assert match, text
    return int(match.group(1))


def test_endpoint_service_is_built_from_dockerfile_endpoint_and_serves_on_the_compose_network(compose) -> None:
    ep = compose["endpoint"]
    assert ep["build"] == {"context": ".", "dockerfile": "Dockerfile.endpoint"}
    argv = ep["entrypoint"]
    assert argv[:2] == ["os-rerank", "serve"]
    args = build_parser().parse_args(argv[1:])  # the real CLI accepts the command line
    assert (args.host, args.port, args.record, args.model) == ("0.0.0.0", 8080, RECORD_FILE, None)
    assert ep["ports"] == [f"{args.port}:{args.port}"]
    # The dummy SigV4 pair, overridable; the names are the ones `os-rerank serve` reads.
    assert ep["environment"] == {
        SERVE_KEY_ID_ENV: f"${{{SERVE_KEY_ID_ENV}:-{DUMMY_KEY_ID}}}",
        SERVE_SECRET_ENV: f"${{{SERVE_SECRET_ENV}:-{DUMMY_SECRET}}}",
    }


def test_dockerfile_endpoint_provides_what_the_compose_service_runs(compose) -> None:
    dockerfile = REPO / compose["endpoint"]["build"]["dockerfile"]
    if not dockerfile.exists():
        pytest.skip(f"{dockerfile.name} not written yet (the endpoint image, issue 3)")
    text = dockerfile.read_text(encoding="utf-8")
    assert re.search(r"^FROM\s+\S*python", text, re.M | re.I), "the health check runs python3 in the image"
    assert re.search(r"pip install", text), "the entrypoint runs the os-rerank console script"


def test_config_example_points_at_the_compose_endpoint(compose, example) -> None:
    args = build_parser().parse_args(compose["endpoint"]["entrypoint"][1:])
    sm = example["sagemaker"]
    assert sm["endpoint_url"] == f"http://endpoint:{args.port}/endpoints/{args.endpoint_name}/invocations"
    assert sm["endpoint_name"] == args.endpoint_name
    assert sm["local_endpoint_url"] == f"http://localhost:{compose['endpoint']['ports'][0].split(':')[0]}"
    assert example["opensearch"]["url"] == "http://localhost:9200"
    assert "endpoint" in compose and "opensearch" in compose


def test_secure_override_turns_security_on_with_the_password_from_the_environment() -> None:
    os_ = _yaml("docker-compose.secure.yml")["services"]["opensearch"]
    env = os_["environment"]
    assert env["DISABLE_INSTALL_DEMO_CONFIG"] == "false" and env["DISABLE_SECURITY_PLUGIN"] == "false"
    assert env["OPENSEARCH_INITIAL_ADMIN_PASSWORD"].startswith("${OPENSEARCH_INITIAL_ADMIN_PASSWORD:?")
    check = " ".join(os_["healthcheck"]["test"])
    # $$: compose leaves "$" for the container's shell, so the password is never written into the file.
    assert "https://localhost:9200/_cluster/health?wait_for_status=yellow" in check
    assert '-u "admin:$${OPENSEARCH_INITIAL_ADMIN_PASSWORD}"' in check


# --- ./demo and scripts/integration -----------------------------------------------------------------------------


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_is_executable_bash_that_parses(script: Path) -> None:
    assert script.read_text(encoding="utf-8").startswith("#!/usr/bin/env bash\n")
    assert script.stat().st_mode & stat.S_IXUSR, f"{script.name} is not executable"
    done = subprocess.run([BASH, "-n", str(script)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_passes_shellcheck(script: Path) -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck not installed (apt-get install shellcheck)")
    done = subprocess.run([shellcheck, str(script)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout


def _os_rerank_calls(script: Path) -> list[list[str]]:
    calls = []
    for line in script.read_text(encoding="utf-8").splitlines():
        words = shlex.split(line, comments=True)
        if words and words[0].endswith("bin/os-rerank"):
            calls.append(words[1:])
    return calls


def test_demo_runs_setup_then_search_compare_on_the_example_config() -> None:
    calls = _os_rerank_calls(REPO / "demo")
    assert calls == [
        ["setup", "--config", "config.example.yaml"],
        ["search", "--config", "config.example.yaml", "What is the capital of the United States?", "--compare"],
    ]
    parser = build_parser()
    for argv in calls:
        parser.parse_args(argv)  # arguments the CLI accepts (argparse exits on a bad one)
    text = (REPO / "demo").read_text(encoding="utf-8")
    assert "docker compose up -d --build --wait" in text
    assert "-m venv .venv" in text and ".venv/bin/python -m pip install -q -e ." in text


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_export_the_endpoints_dummy_keys_and_never_real_ones(script: Path) -> None:
    text = script.read_text(encoding="utf-8")
    assert f'export AWS_ACCESS_KEY_ID="${{{SERVE_KEY_ID_ENV}:-{DUMMY_KEY_ID}}}"' in text
    assert f'export AWS_SECRET_ACCESS_KEY="${{{SERVE_SECRET_ENV}:-{DUMMY_SECRET}}}"' in text
    assert re.search(r"^unset .*\bAWS_PROFILE\b.*\bAWS_SESSION_TOKEN\b", text, re.M)


def _fake_path(tmp_path: Path, docker: str | None) -> dict[str, str]:
    """An environment whose PATH has only what the scripts need before their Docker checks, plus a fake docker."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dirname", "cat"):
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    if docker is not None:
        fake = bin_dir / "docker"
        fake.write_text(f"#!{BASH}\n{docker}\n", encoding="utf-8")
        fake.chmod(0o755)
    return {"PATH": str(bin_dir), "HOME": str(tmp_path)}


@pytest.mark.parametrize(
    ("docker", "message"),
    [
        (None, "docker not found"),
        ('[ "$1" = info ] && exit 1; exit 0', "the Docker daemon is not running"),
        ('[ "$1" = compose ] && exit 1; exit 0', "'docker compose' (Compose v2) not found"),
    ],
    ids=["no-docker", "daemon-down", "no-compose"],
)
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_stop_with_a_clear_message_without_docker(tmp_path: Path, script: Path, docker: str | None,
                                                          message: str) -> None:
    env = _fake_path(tmp_path, docker)
    done = subprocess.run([BASH, str(script)], capture_output=True, text=True, env=env, timeout=30, check=False)
    assert done.returncode == 1
    assert message in done.stderr, done.stderr
    assert done.stdout == ""  # nothing was installed or started before the check


def test_integration_script_runs_the_suite_against_a_fresh_stack_and_tears_it_down(compose, example) -> None:
    text = (REPO / "scripts" / "integration").read_text(encoding="utf-8")
    assert "trap 'docker compose down -v --remove-orphans' EXIT" in text
    assert text.index("trap ") < text.index("docker compose up -d --build --wait")
    assert f'OPENSEARCH_VERSION="${{1:-${{OPENSEARCH_VERSION:-{_default_version(compose)}}}}}"' in text
    exports = dict(re.findall(r"^export (OPENSEARCH_URL|OS_RERANK_\w+_URL)=(\S+)$", text, re.M))
    assert exports == {
        "OPENSEARCH_URL": example["opensearch"]["url"],
        "OS_RERANK_ENDPOINT_URL": example["sagemaker"]["endpoint_url"],
        "OS_RERANK_LOCAL_ENDPOINT_URL": example["sagemaker"]["local_endpoint_url"],
    }
    assert '"$python" -m pytest tests/scenarios tests/test_integration_*.py -rs "$@"' in text


# --- the workflow ---------------------------------------------------------------------------------------------------


def test_workflow_runs_the_integration_script_on_a_2x_and_a_3x(compose, workflow_versions) -> None:
    majors = sorted(_version(v)[0] for v in workflow_versions)
    assert majors == [2, 3]
    assert all(_version(v) >= (2, 12, 0) for v in workflow_versions)
    assert _default_version(compose) in workflow_versions
    wf = _yaml(".github/workflows/integration.yml")
    triggers = wf[True]  # YAML 1.1 reads the key `on` as a boolean
    assert "push" in triggers and "pull_request" in triggers
    job = wf["jobs"]["opensearch"]
    assert job["runs-on"] == "ubuntu-latest"
    runs = [step.get("run", "") for step in job["steps"]]
    assert any("vm.max_map_count=262144" in r for r in runs)
    assert any(r.startswith("scripts/integration ") and "matrix.opensearch" in r for r in runs)
    python = [s["with"]["python-version"] for s in job["steps"] if "setup-python" in s.get("uses", "")]
    assert python == ["3.11"]


def test_readme_documents_the_local_stack(workflow_versions) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "./demo" in quick
    section = readme.split("## Local stack (Docker)", 1)[1].split("\n## ", 1)[0]
    for needed in ("./demo", "scripts/integration", "docker-compose.secure.yml", "OPENSEARCH_INITIAL_ADMIN_PASSWORD",
                   "OPENSEARCH_URL not set", ".ci/run", *workflow_versions):
        assert needed in section, needed


def test_no_real_looking_aws_key_in_the_stack_files() -> None:
    files = ["docker-compose.yml", "docker-compose.secure.yml", "demo", "scripts/integration",
             ".github/workflows/integration.yml"]
    for name in files:
        assert not re.search(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b", (REPO / name).read_text(encoding="utf-8")), name
