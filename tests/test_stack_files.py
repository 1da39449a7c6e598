"""The stack's files, checked statically: the compose files, ./demo, scripts/version-matrix, the workflow.

Nothing here starts a container (this machine has no Docker engine) or a node (the real layer does, and ./demo was
run by hand without Docker); what can be proved statically is: the YAML has the structure the stack needs, the
scripts parse and call the CLI with arguments it accepts, ./demo picks its way and says clearly when it cannot,
and every URL, key and version is spelled the same in every file.
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

pytestmark = pytest.mark.unit  # layer 1 of the suite (README "Tests")

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = [REPO / "demo"]
RECORD_FILE = "/tmp/os-rerank-received.jsonl"  # docker-compose.yml: the endpoint's --record, for debugging
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
    job = _yaml(".github/workflows/integration.yml")["jobs"]["matrix"]
    return re.findall(r"\d+\.\d+\.\d+", next(s["run"] for s in job["steps"] if "version-matrix" in s.get("run", "")))


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


# --- ./demo ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("script", [*SCRIPTS, REPO / "scripts" / "version-matrix"], ids=lambda p: p.name)
def test_script_is_executable_and_parses(script: Path) -> None:
    text = script.read_text(encoding="utf-8")
    assert script.stat().st_mode & stat.S_IXUSR, f"{script.name} is not executable"
    if text.startswith("#!/usr/bin/env python3\n"):
        compile(text, str(script), "exec")
        return
    assert text.startswith("#!/usr/bin/env bash\n")
    done = subprocess.run([BASH, "-n", str(script)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_passes_shellcheck(script: Path) -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck not installed (apt-get install shellcheck)")
    done = subprocess.run([shellcheck, str(script)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout


SHELL_VALUES = {"$config": "config.local.yaml", "$version": "2.19.1", "$query": "q"}


def _os_rerank_calls(script: Path) -> list[list[str]]:
    """Each `.../bin/os-rerank ...` command line of a script, cut at the first shell operator, variables filled."""
    calls = []
    for line in script.read_text(encoding="utf-8").splitlines():
        words = shlex.split(line.replace("\\", ""), comments=True)
        while words and ("=" in words[0] and not words[0].startswith("-") or words[0] == "nohup"):
            words = words[1:]  # VAR=value prefixes, nohup
        if not (words and words[0].endswith("bin/os-rerank")):
            continue
        argv = []
        for word in words[1:]:
            if word in ("||", "|", "&&", ";;", ";", "&") or word.startswith((">", "2>")):
                break
            argv.append(SHELL_VALUES.get(word, word))
        calls.append(argv)
    return calls


def test_demo_runs_a_real_node_then_setup_search_and_a_second_setup_that_changes_nothing() -> None:
    calls = _os_rerank_calls(REPO / "demo")
    assert [c[:2] for c in calls] == [
        ["local", "down"],  # ./demo down
        ["local", "up"],  # no Docker: a real node from Maven artifacts
        ["serve", "--port"],  # and the endpoint
        ["setup", "--config"], ["search", "--config"], ["setup", "--config"]]
    parser = build_parser()
    for argv in calls:
        parser.parse_args(argv)  # arguments the CLI accepts (argparse exits on a bad one)
    text = (REPO / "demo").read_text(encoding="utf-8")
    assert "docker compose up -d --build --wait" in text  # with a Docker daemon, the compose stack
    assert 'grep -q "^No changes" "$state/second-setup.txt"' in text
    assert "-m venv .venv" in text and ".venv/bin/python -m pip install -q -e ." in text


def test_the_local_config_differs_from_the_example_only_in_where_things_are(example) -> None:
    local = _yaml("config.local.yaml")
    assert local["opensearch"].pop("url") == "http://127.0.0.1:9200"
    assert local["sagemaker"].pop("endpoint_url") == \
        "http://127.0.0.1:8080/endpoints/os-rerank-cross-encoder/invocations"
    assert local["sagemaker"].pop("local_endpoint_url") == "http://127.0.0.1:8080"
    for section in ("opensearch", "sagemaker"):
        for key in ("url", "endpoint_url", "local_endpoint_url"):
            example[section].pop(key, None)
    assert local == example


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_export_the_endpoints_dummy_keys_and_never_real_ones(script: Path) -> None:
    text = script.read_text(encoding="utf-8")
    assert f'export AWS_ACCESS_KEY_ID="${{{SERVE_KEY_ID_ENV}:-{DUMMY_KEY_ID}}}"' in text
    assert f'export AWS_SECRET_ACCESS_KEY="${{{SERVE_SECRET_ENV}:-{DUMMY_SECRET}}}"' in text
    assert re.search(r"^unset .*\bAWS_PROFILE\b.*\bAWS_SESSION_TOKEN\b", text, re.M)


def _fake_path(tmp_path: Path, docker: str | None) -> dict[str, str]:
    """An environment whose PATH has only what the demo needs before its checks, plus a fake docker."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dirname", "cat", "rm"):
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
        (None, "OS_RERANK_DEMO=docker, but docker, its daemon or 'docker compose' (Compose v2) is missing."),
        ('[ "$1" = info ] && exit 1; exit 0', "OS_RERANK_DEMO=docker, but docker, its daemon"),
        ('[ "$1" = compose ] && exit 1; exit 0', "OS_RERANK_DEMO=docker, but docker, its daemon"),
    ],
    ids=["no-docker", "daemon-down", "no-compose"],
)
def test_demo_asked_for_docker_without_it_stops_with_a_clear_message(tmp_path: Path, docker: str | None,
                                                                     message: str) -> None:
    env = {**_fake_path(tmp_path, docker), "OS_RERANK_DEMO": "docker"}
    done = subprocess.run([BASH, str(REPO / "demo")], capture_output=True, text=True, env=env, timeout=30,
                          check=False)
    assert done.returncode == 1
    assert message in done.stderr
    assert done.stdout == ""  # nothing was installed or started before the check


def test_demo_refuses_an_unknown_way_and_down_with_nothing_started(tmp_path: Path) -> None:
    env = {**_fake_path(tmp_path, None), "OS_RERANK_DEMO": "kubernetes"}
    done = subprocess.run([BASH, str(REPO / "demo")], capture_output=True, text=True, env=env, timeout=30,
                          check=False)
    assert (done.returncode, done.stderr) == (1, "demo: OS_RERANK_DEMO must be local or docker, not 'kubernetes'.\n")
    work = tmp_path / "copy"  # a checkout where ./demo never ran
    work.mkdir()
    shutil.copy(REPO / "demo", work / "demo")
    env = {k: v for k, v in env.items() if k != "OS_RERANK_DEMO"}
    done = subprocess.run([BASH, str(work / "demo"), "down"], capture_output=True, text=True, env=env, timeout=30,
                          check=False)
    assert (done.returncode, done.stdout) == (0, "demo: nothing to stop (./demo has not run here)\n")


# --- the workflow ---------------------------------------------------------------------------------------------------


def test_workflow_runs_the_version_matrix_on_a_2x_and_a_3x(compose, workflow_versions) -> None:
    majors = sorted({_version(v)[0] for v in workflow_versions})
    assert majors == [2, 3]
    assert all(_version(v) >= (2, 12, 0) for v in workflow_versions)
    assert _default_version(compose) in workflow_versions
    wf = _yaml(".github/workflows/integration.yml")
    triggers = wf[True]  # YAML 1.1 reads the key `on` as a boolean
    assert "push" in triggers and "pull_request" in triggers
    job = wf["jobs"]["matrix"]
    assert job["runs-on"] == "ubuntu-latest"
    runs = [step.get("run", "") for step in job["steps"]]
    assert any(r.startswith("scripts/version-matrix --secure ") for r in runs)
    python = [s["with"]["python-version"] for s in job["steps"] if "setup-python" in s.get("uses", "")]
    assert python == ["3.11"]


def test_readme_documents_the_local_node_and_the_docker_stack(workflow_versions) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "./demo" in quick
    section = readme.split("## A real OpenSearch on this machine", 1)[1].split("\n## ", 1)[0]
    for needed in ("os-rerank local up", "--secure", "./demo", "docker-compose.secure.yml",
                   "OPENSEARCH_INITIAL_ADMIN_PASSWORD", "scripts/version-matrix", ".ci/run", *workflow_versions):
        assert needed in section, needed


def test_no_real_looking_aws_key_in_the_stack_files() -> None:
    files = ["docker-compose.yml", "docker-compose.secure.yml", "demo", "scripts/version-matrix",
             ".github/workflows/integration.yml", "config.local.yaml", ".ci/run"]
    for name in files:
        assert not re.search(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b", (REPO / name).read_text(encoding="utf-8")), name


def test_every_package_ships_in_a_non_editable_install() -> None:
    """`pip install .` (the endpoint image does it) installs only the packages pyproject lists: a subpackage left
    out works in the editable checkout and is missing everywhere else (os_rerank.local once was)."""
    import tomllib

    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "os_rerank").rglob("__init__.py")}
    assert on_disk - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
