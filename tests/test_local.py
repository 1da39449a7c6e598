"""`os-rerank local`, fast: repository choice, artifact checks, what a node is made of, Java, and the whole
build -> start -> status -> stop cycle on a fake distribution (tests/fakes/local_dist.py). The real node is built
from the real artifacts by the real layer (tests/backends.py)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from os_rerank.cli import main
from os_rerank.errors import ConfigError, LocalNodeError
from os_rerank.events import Event, ignore
from os_rerank.local import distribution as dist
from os_rerank.local import host
from os_rerank.local import node as local
from os_rerank.local.host import RunAs
from os_rerank.local.layout import NodeInfo
from os_rerank.local.maven import PINNED_SHA1, Artifact, Cache, Dependency, NotServedError, pom_dependencies
from os_rerank.local.maven_repository import Repository, choose_repository, mirror_of_central, redact_url
from tests.fakes.local_dist import VERSION, make_jdk, make_repository

pytestmark = pytest.mark.unit  # layer 1 of the suite (README "Tests")

ME = RunAs()  # run the fake node as ourselves, even as root (it is not OpenSearch, it does not refuse root)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- where artifacts come from ---------------------------------------------------------------------------------------

SETTINGS = """<settings xmlns="http://maven.apache.org/SETTINGS/1.2.0">
  <localRepository>/srv/m2</localRepository>
  <mirrors>
    <mirror><id>blocker</id><mirrorOf>external:http:*</mirrorOf><url>http://0.0.0.0/</url><blocked>true</blocked>
    </mirror>
    {mirror}
  </mirrors>
</settings>"""


@pytest.mark.parametrize(("mirror_of", "covered"), [
    ("*", True), ("central", True), ("external:*", True), ("repo1,central", True), ("*,!central", False),
    ("other", False), ("external:http:*", False),
])
def test_a_mirror_counts_when_its_mirror_of_covers_central(mirror_of: str, covered: bool) -> None:
    xml = SETTINGS.format(mirror=f"<mirror><id>m</id><mirrorOf>{mirror_of}</mirrorOf><url>https://m/maven2</url>"
                                 "</mirror>")
    assert mirror_of_central(xml) == ("https://m/maven2" if covered else None)


def test_repository_precedence_flag_then_environment_then_maven_settings_then_central(tmp_path: Path) -> None:
    settings = tmp_path / "settings.xml"
    env: dict[str, str] = {}
    repo = choose_repository(None, env, tmp_path, settings=[settings])  # no settings file
    assert (repo.url, repo.source, repo.local) == ("https://repo1.maven.org/maven2", "Maven Central",
                                                   tmp_path / ".m2" / "repository")
    settings.write_text(SETTINGS.format(
        mirror="<mirror><id>corp</id><mirrorOf>central</mirrorOf><url>https://corp/maven2/</url></mirror>"))
    repo = choose_repository(None, env, tmp_path, settings=[settings])
    assert (repo.url, repo.source, repo.local) == ("https://corp/maven2", f"Maven mirror in {settings}",
                                                   Path("/srv/m2"))
    env = {"OS_RERANK_MAVEN_REPOSITORY": "https://env/repo"}
    repo = choose_repository(None, env, tmp_path, settings=[settings])
    assert (repo.url, repo.source) == ("https://env/repo", "OS_RERANK_MAVEN_REPOSITORY")
    repo = choose_repository(str(tmp_path), env, tmp_path, settings=[settings])
    assert (repo.url, repo.source) == (tmp_path.as_uri(), "--repository")
    with pytest.raises(LocalNodeError, match="--repository: not a repository URL: 'ftp://u:\\*\\*\\*@h'"):
        choose_repository("ftp://u:secret@h", env, tmp_path, settings=[settings])


def test_a_password_in_a_repository_url_is_never_shown() -> None:
    assert redact_url("https://user:s3cret@mirror.example/maven2") == "https://user:***@mirror.example/maven2"
    assert Repository("https://u:pw@h:8443/r", "x").shown == "https://u:***@h:8443/r"
    assert redact_url("https://mirror.example/maven2") == "https://mirror.example/maven2"


def test_pom_dependencies_are_the_runtime_ones_with_versions() -> None:
    pom = """<project xmlns="http://maven.apache.org/POM/4.0.0"><dependencies>
      <dependency><groupId>org.ow2.asm</groupId><artifactId>asm</artifactId><version>9.7</version>
        <exclusions><exclusion><groupId>*</groupId><artifactId>*</artifactId></exclusion></exclusions></dependency>
      <dependency><groupId>a</groupId><artifactId>t</artifactId><version>1</version><scope>test</scope></dependency>
      <dependency><groupId>a</groupId><artifactId>o</artifactId><version>1</version><optional>true</optional>
      </dependency>
      <dependency><groupId>a</groupId><artifactId>p</artifactId><version>${x}</version></dependency>
      <dependency><groupId>org.opensearch</groupId><artifactId>opensearch</artifactId><version>2</version></dependency>
    </dependencies></project>"""
    assert pom_dependencies(pom) == [Dependency(Artifact("org.ow2.asm", "asm", "9.7"), transitive=False),
                                     Dependency(Artifact("org.opensearch", "opensearch", "2"))]


def test_a_module_leaves_out_what_the_distribution_already_has() -> None:
    lib = ["opensearch-2.19.1.jar", "opensearch-common-2.19.1.jar", "reactor-core-3.5.20.jar"]
    assert dist.provided_by(lib, Artifact("org.opensearch", "opensearch", "2.19.1"))
    assert dist.provided_by(lib, Artifact("io.projectreactor", "reactor-core", "3.6.0"))  # any version: jar hell
    assert not dist.provided_by(lib, Artifact("org.opensearch", "opensearch-ssl-config", "2.19.1"))


# --- fetching and checking -------------------------------------------------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    return Repository(make_repository(tmp_path / "repo").as_uri(), "test", local=tmp_path / "no-m2")


def fetch(tmp_path: Path, repo: Repository, artifact: Artifact) -> tuple[object, list[str]]:
    lines: list[str] = []
    return Cache(tmp_path / "cache", repo, lambda event: lines.append(event.line())).fetch(artifact), lines


def test_an_artifact_is_checked_against_its_published_sha1_then_served_from_the_cache(
        tmp_path: Path, repo: Repository) -> None:
    artifact = dist.distribution_artifact(VERSION)
    fetched, lines = fetch(tmp_path, repo, artifact)
    assert fetched.checked_by == "published .sha1" and fetched.path.is_file()  # type: ignore[attr-defined]
    assert lines[0].startswith(f"opensearch-{VERSION}.zip: downloading ")
    again, lines = fetch(tmp_path, repo, artifact)
    assert (again.checked_by, lines) == ("cache", [])  # type: ignore[attr-defined]
    assert not list((tmp_path / "cache").rglob("*.part"))


def test_a_download_that_does_not_match_its_sha1_is_refused_and_not_kept(tmp_path: Path, repo: Repository) -> None:
    artifact = dist.module_artifact(dist.MODULES[0], VERSION)
    served = Path(repo.url[len("file://"):]) / artifact.path
    served.with_name(served.name + ".sha1").write_text("0" * 40)
    with pytest.raises(LocalNodeError, match=r"SHA-1 [0-9a-f]{40} does not match the published \.sha1 0{40}"):
        fetch(tmp_path, repo, artifact)
    assert [p.name for p in (tmp_path / "cache").rglob(f"{artifact.file_name}*")] == [f"{artifact.file_name}.lock"]


def test_without_a_published_sha1_a_pinned_one_is_used_else_one_is_recorded(tmp_path: Path) -> None:
    pinned = Repository(make_repository(tmp_path / "pinned", "2.19.1", sha1=False).as_uri(), "test", local=None)
    real_jar = dist.module_artifact(dist.MODULES[0], "2.19.1")
    assert real_jar.coordinates in PINNED_SHA1  # the real jar's SHA-1; the fake one differs
    with pytest.raises(LocalNodeError, match="does not match the pinned"):
        fetch(tmp_path, pinned, real_jar)
    repo = Repository(make_repository(tmp_path / "repo", sha1=False).as_uri(), "test", local=None)
    other = Artifact("org.opensearch.plugin", "opensearch-knn", f"{VERSION}.0", "zip")
    assert other.coordinates not in PINNED_SHA1
    fetched, lines = fetch(tmp_path, repo, other)
    assert fetched.checked_by == "recorded on first download"  # type: ignore[attr-defined]
    assert "publishes no checksum for it and os-rerank pins none; recorded its SHA-1" in lines[-1]
    cached = tmp_path / "cache" / other.path
    cached.write_bytes(b"damaged")
    again, lines = fetch(tmp_path, repo, other)
    assert "cached copy is damaged" in lines[0] and again.checked_by == "recorded on first download"  # type: ignore


def test_the_local_maven_repository_is_used_before_downloading(tmp_path: Path) -> None:
    m2 = make_repository(tmp_path / "m2")
    repo = Repository((tmp_path / "empty").as_uri(), "test", local=m2)
    fetched, lines = fetch(tmp_path, repo, dist.distribution_artifact(VERSION))
    assert lines[0] == f"opensearch-{VERSION}.zip: from the local Maven repository {m2}"
    assert fetched.path.read_bytes() == (m2 / dist.distribution_artifact(VERSION).path).read_bytes()  # type: ignore


def test_an_artifact_that_is_not_served_says_so(tmp_path: Path, repo: Repository) -> None:
    with pytest.raises(NotServedError, match=r"org.opensearch.plugin:opensearch-ml-plugin:2.19.2.0:zip is not "):
        fetch(tmp_path, repo, Artifact("org.opensearch.plugin", "opensearch-ml-plugin", "2.19.2.0", "zip"))


# --- what a node is made of -----------------------------------------------------------------------------------------


def test_versions_and_their_java() -> None:
    assert dist.parse_version("2.19.1") == (2, 19, 1)
    for bad in ("2.19", "latest", "2.19.1-SNAPSHOT", ""):
        with pytest.raises(ConfigError, match="not an OpenSearch release"):
            dist.parse_version(bad)
    with pytest.raises(ConfigError, match="needs OpenSearch 2.12 or newer"):
        dist.parse_version("2.11.1")
    assert dist.java_range((2, 19, 1)) == (11, 21) and dist.java_range((3, 3, 0)) == (21, None)


def test_plugins_are_installed_after_what_they_extend() -> None:
    extends = {"opensearch-neural-search": ["opensearch-knn"], "opensearch-knn": ["lang-painless"],
               "opensearch-ml": ["opensearch-job-scheduler"], "opensearch-job-scheduler": []}
    order = dist.install_order(extends, frozenset({"lang-painless", "transport-netty4"}))
    assert order.index("opensearch-knn") < order.index("opensearch-neural-search")
    assert order.index("opensearch-job-scheduler") < order.index("opensearch-ml")
    with pytest.raises(LocalNodeError, match="plugin opensearch-knn extends lang-painless, which os-rerank does not"):
        dist.install_order(extends)
    with pytest.raises(LocalNodeError, match="cycle"):
        dist.install_order({"a": ["b"], "b": ["a"]})


def test_module_descriptors_take_their_class_from_the_jar() -> None:
    painless, reindex = dist.MODULES
    assert dist.module_classname(painless, ["org/opensearch/painless/PainlessPlugin.class"]) == \
        "org.opensearch.painless.PainlessPlugin"  # 2.19.1
    assert dist.module_classname(painless, ["org/opensearch/painless/PainlessModulePlugin.class",
                                            "org/opensearch/painless/PainlessPlugin.class"]).endswith("ModulePlugin")
    with pytest.raises(LocalNodeError, match="the reindex-client jar holds none of"):
        dist.module_classname(reindex, [])
    text = dist.module_descriptor(painless, "2.19.1", "org.opensearch.painless.PainlessPlugin", "11")
    assert dist.parse_properties(text) == {
        "description": "An easy, safe and fast scripting language for OpenSearch", "version": "2.19.1",
        "name": "lang-painless", "classname": "org.opensearch.painless.PainlessPlugin", "java.version": "11",
        "opensearch.version": "2.19.1", "custom.foldername": "", "extended.plugins": "",
        "has.native.controller": "false"}
    assert 'permission java.lang.RuntimePermission "createClassLoader";' in painless.policy
    assert 'grant codeBase "${codebase.opensearch-rest-client}"' in reindex.policy


def test_the_node_configuration_is_a_laptop_node_and_leaves_connector_settings_to_setup() -> None:
    yml = dist.opensearch_yml(dist.NodeSettings("plain", 9200, "/d", "/l"))
    assert "discovery.type: single-node\nnetwork.host: 127.0.0.1\nhttp.port: 9200\n" in yml
    assert "plugins.ml_commons.only_run_on_ml_node: false" in yml
    assert "trusted_connector_endpoints_regex" not in yml and "private_ip_enabled" not in yml
    assert dist.check_heap("2g") == "2g"
    for bad in ("1", "256m", "lots"):
        with pytest.raises(ConfigError, match="--heap"):
            dist.check_heap(bad)


def test_java_is_chosen_by_the_version_it_must_run(tmp_path: Path) -> None:
    jdk17, jdk25 = make_jdk(tmp_path, 17), make_jdk(tmp_path, 25)
    env = {"PATH": "", "JAVA_HOME": str(jdk25), "OPENSEARCH_JAVA_HOME": str(jdk17)}
    assert host.find_java((2, 19, 1), env, roots=()) == (Path(os.path.realpath(jdk17)), 17)
    assert host.find_java((3, 3, 0), env, roots=()) == (Path(os.path.realpath(jdk25)), 25)
    assert host.find_java((3, 3, 0), {"PATH": ""}, roots=(tmp_path,))[1] == 25  # found under a JVM root
    only8 = make_jdk(tmp_path / "old", 8)
    with pytest.raises(LocalNodeError, match=r"OpenSearch 3.3.0 needs Java 21 or newer; found only Java 8 \("):
        host.find_java((3, 3, 0), {"PATH": "", "JAVA_HOME": str(only8)}, roots=())
    with pytest.raises(LocalNodeError, match=r"OpenSearch 2.19.1 needs Java 11 to 21, and no Java was found"):
        host.find_java((2, 19, 1), {"PATH": ""}, roots=())


# --- the node's life cycle, on the fake distribution -----------------------------------------------------------------


@pytest.fixture
def fake_home(tmp_path: Path) -> Iterator[dict[str, object]]:
    repo = make_repository(tmp_path / "repo")
    env = {"PATH": os.environ.get("PATH", ""), "OPENSEARCH_JAVA_HOME": str(make_jdk(tmp_path, 17)),
           "HOME": str(tmp_path)}  # no ~/.m2 of the machine's
    ctx: dict[str, object] = {"home": tmp_path / "nodes", "cache": tmp_path / "cache", "env": env,
                              "repo": repo.as_uri()}
    yield ctx
    for node in local.list_nodes(tmp_path / "nodes"):
        local.down(node)


def up(ctx: dict[str, object], name: str = "plain", *, port: int | None = None, timeout: float = 20,
       progress: list[str] | None = None, **kw: object) -> local.UpResult:
    ask = local.Ask(name, str(kw.pop("version", VERSION)), port or free_port(), False, "1g")
    return local.up(ask, home=ctx["home"], cache_root=ctx["cache"], environ=ctx["env"],  # type: ignore[arg-type]
                    repository=str(ctx["repo"]), timeout=timeout, run_as=ME,
                    progress=(lambda event: progress.append(event.line())) if progress is not None else ignore,
                    **kw)  # type: ignore


def test_up_builds_starts_and_reports_then_down_stops_and_up_starts_again(fake_home: dict[str, object]) -> None:
    lines: list[str] = []
    first = up(fake_home, progress=lines)
    assert first.outcome == "built and started" and first.pid is not None
    assert [line for line in lines if line.startswith("installing")] == [
        "installing plugin opensearch-job-scheduler", "installing plugin opensearch-ml",
        "installing plugin opensearch-knn", "installing plugin opensearch-neural-search"]
    node = first.node
    painless = node.distribution / "modules" / "lang-painless"
    assert sorted(p.name for p in painless.iterdir()) == [
        "antlr4-runtime-0.0.1.jar", f"lang-painless-{VERSION}.jar", f"opensearch-scripting-painless-spi-{VERSION}.jar",
        "plugin-descriptor.properties", "plugin-security.policy"]
    reindex = node.distribution / "modules" / "reindex"  # codec came transitively; opensearch-core is in lib/
    assert sorted(p.name for p in reindex.iterdir()) == [
        "codec-2.0.jar", "http-lib-1.0.jar", "plugin-descriptor.properties", "plugin-security.policy",
        f"reindex-client-{VERSION}.jar"]
    recorded = json.loads((node.path / "node.json").read_text())
    assert recorded["version"] == VERSION and len(recorded["artifacts"]) == 11  # zip, 4 plugins, 6 jars
    assert local.status(node).state == "running (green)"
    again = up(fake_home, port=node.port)
    assert (again.outcome, again.pid) == ("already running", first.pid)
    assert local.down(node) == "stopped"
    assert local.status(node).state == "stopped" and local.down(node) == "was not running"
    warm = up(fake_home, port=node.port)
    assert warm.outcome == "started" and warm.pid != first.pid


def test_a_taken_port_is_refused_before_anything_is_downloaded(fake_home: dict[str, object]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(LocalNodeError, match=f"port {port} is taken"):
            up(fake_home, port=port)
    assert not Path(str(fake_home["cache"])).exists()


def test_a_node_that_dies_while_starting_is_reported_with_its_log(fake_home: dict[str, object]) -> None:
    node = up(fake_home).node
    local.down(node)
    (node.distribution / "FAKE_BEHAVIOUR").write_text("die")
    with pytest.raises(LocalNodeError, match="node plain stopped while starting; its log ends: .*boom"):
        up(fake_home, port=node.port)
    assert local.status(node).pid is None


def test_a_node_that_never_gets_healthy_is_stopped_after_the_timeout(fake_home: dict[str, object]) -> None:
    node = up(fake_home).node
    local.down(node)
    (node.distribution / "FAKE_BEHAVIOUR").write_text("hang")
    with pytest.raises(LocalNodeError, match=r"did not become healthy within 3s \(last health: no answer\); stopped"):
        up(fake_home, port=node.port, timeout=3)
    assert local.status(node).pid is None


def test_an_interrupted_build_leaves_no_partial_node_or_download(fake_home: dict[str, object]) -> None:
    def interrupt(event: Event) -> None:
        if event.message.startswith("installing plugin opensearch-ml"):
            raise KeyboardInterrupt

    ask = local.Ask("plain", VERSION, free_port(), False, "1g")
    with pytest.raises(KeyboardInterrupt):
        local.up(ask, home=fake_home["home"], cache_root=fake_home["cache"], environ=fake_home["env"],  # type: ignore
                 repository=str(fake_home["repo"]), run_as=ME, progress=interrupt)
    home = Path(str(fake_home["home"]))
    assert sorted(p.name for p in home.iterdir()) == [".plain.lock"]  # no node, no .partial
    assert not list(Path(str(fake_home["cache"])).rglob("*.part"))


def test_another_version_needs_fresh_and_a_version_not_served_lists_what_is_missing(
        fake_home: dict[str, object]) -> None:
    node = up(fake_home).node
    with pytest.raises(LocalNodeError, match=f"node plain is OpenSearch {VERSION}, not 2.19.2"):
        up(fake_home, port=node.port, version="2.19.2")
    local.down(node)
    with pytest.raises(LocalNodeError, match=r"does not serve 7 artifact\(s\) this version needs: "
                                             r"org.opensearch.distribution.integ-test-zip:opensearch:2.19.2:zip, "):
        up(fake_home, port=node.port, version="2.19.2", fresh=True)
    assert local.load_node(Path(str(fake_home["home"])), "plain") is None  # --fresh removed it first


# --- the CLI ---------------------------------------------------------------------------------------------------------


def run(*argv: str, environ: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), environ=environ or {}, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_cli_without_nodes_says_how_to_get_one(tmp_path: Path) -> None:
    for action in ("status", "down", "logs", "env"):
        code, out, err = run("local", action, "--dir", str(tmp_path))
        assert (code, out) == (8, "")
        assert err == (f"os-rerank: error: no local node in {tmp_path}\n"
                       "os-rerank: error: fix: `os-rerank local up` builds one\n")


def test_cli_env_points_at_a_secured_node_without_printing_its_password(tmp_path: Path) -> None:
    folder = tmp_path / "secure"
    folder.mkdir()
    info = NodeInfo("secure", VERSION, 9201, True, "1g", "/jdk", 17, str(folder))
    (folder / "node.json").write_text(json.dumps(info.to_json()))
    (folder / "admin-password").write_text("Sup3r-secret-pw\n")
    code, out, err = run("local", "env", "--dir", str(tmp_path))
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "export OPENSEARCH_URL=https://127.0.0.1:9201",
        "export OPENSEARCH_USERNAME=admin",
        f'export OPENSEARCH_PASSWORD="$(cat {folder / "admin-password"})"',
        f"export OPENSEARCH_CA_CERTS={folder / 'root-ca.pem'}",
    ]
    code, out, err = run("local", "status", "--dir", str(tmp_path), "--json")
    assert code == 0 and "Sup3r" not in out
    assert json.loads(out)[0]["state"] == "stopped"


def test_cli_up_refuses_bad_values_before_doing_anything(tmp_path: Path) -> None:
    for argv, message in ((["--version", "2.11.0"], "--version 2.11.0: os-rerank needs OpenSearch 2.12 or newer"),
                          (["--version", "latest"], "--version: not an OpenSearch release: 'latest'"),
                          (["--heap", "lots"], "--heap: expected a size like 1g or 512m"),
                          (["--port", "70000"], "os-rerank local up: argument --port: expected a port from 1024"),
                          (["--name", "../etc"], "--name: '../etc' is not a node name"),
                          (["--name", "Plain Node"], "--name: 'Plain Node' is not a node name")):
        code, out, err = run("local", "up", "--dir", str(tmp_path), *argv)
        assert (code, out) == (2, ""), err
        assert err.splitlines()[0].startswith(f"os-rerank: error: {message}")
    assert list(tmp_path.iterdir()) == []  # nothing was made


def test_sha1_helper_matches_hashlib(tmp_path: Path) -> None:
    from os_rerank.local.maven import sha1_of

    path = tmp_path / "f"
    path.write_bytes(b"x" * 3_000_000)
    assert sha1_of(path) == hashlib.sha1(b"x" * 3_000_000).hexdigest()
