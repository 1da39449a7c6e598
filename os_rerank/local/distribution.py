"""What a local OpenSearch node is made of, per version, and the files os-rerank writes into it. Pure: no I/O.

A node is OpenSearch's minimal distribution (`integ-test-zip`, no JDK; its modules/ holds only transport-netty4)
plus:
- the modules ML Commons relies on that this zip lacks (`MODULES`): lang-painless, which runs connector scripts
  (k-NN extends it too), and reindex, whose delete-by-query ML Commons calls when it deletes a model (without it,
  deleting a model that is already gone answers 500 "failed to find action DeleteByQueryAction" instead of 404).
  Each is its Maven jar with the runtime dependencies its POM names (those the distribution's lib/ already has
  left out, as OpenSearch's jar-hell check demands), a plugin-descriptor.properties with the fields of the module's
  build.gradle (the class name read from the jar: it was renamed between versions), and the module's own security
  policy (`modules/<module>/src/main/plugin-metadata/plugin-security.policy` in OpenSearch's sources);
- the plugins, at `<version>.0`: job-scheduler (ML Commons extends it), ML Commons, k-NN (neural-search extends
  it), neural-search, and for a secured node the security plugin. They are installed in the order their
  descriptors' `extended.plugins` require, with `bin/opensearch-plugin install --batch`.
The configuration is what a laptop node needs and no more: one node on loopback, ML allowed on data nodes, ML
Commons' memory breakers off. Connector settings (trusted endpoints, private IPs) are left to `os-rerank setup`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import ConfigError, LocalNodeError
from .maven import Artifact

DEFAULT_VERSION = "2.19.1"
# The plugins a rerank node needs, by Maven artifact id (neural-search installs as opensearch-neural-search).
PLUGINS = ("opensearch-job-scheduler", "opensearch-ml-plugin", "opensearch-knn", "neural-search")
SECURITY_PLUGIN = "opensearch-security"

Version = tuple[int, int, int]


def parse_version(text: str) -> Version:
    """(major, minor, patch) of an OpenSearch release like 2.19.1; LocalNodeError for anything else."""
    match = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", text.strip())
    if not match:
        raise ConfigError([f"--version: not an OpenSearch release: {text!r}"], fix="write it like 2.19.1")
    major, minor, patch = (int(g) for g in match.groups())
    if (major, minor) < (2, 12):
        raise ConfigError([f"--version {text}: os-rerank needs OpenSearch 2.12 or newer (remote text_similarity "
                           "models and the rerank processor start there)"], fix="pick 2.12.0 or newer")
    return major, minor, patch


def distribution_artifact(version: str) -> Artifact:
    return Artifact("org.opensearch.distribution.integ-test-zip", "opensearch", version, "zip")


def plugin_artifacts(version: str, *, secure: bool) -> list[Artifact]:
    names = [*PLUGINS, SECURITY_PLUGIN] if secure else list(PLUGINS)
    return [Artifact("org.opensearch.plugin", name, f"{version}.0", "zip") for name in names]


def java_range(version: Version) -> tuple[int, int | None]:
    """The Java feature releases a node of `version` runs on: (lowest, highest or None).

    2.x runs on 11 to 21 (the bundled JDK is 21; its Java Security Manager is gone from Java 24); 3.x needs 21 and
    no longer uses the Security Manager.
    """
    return (21, None) if version >= (3, 0, 0) else (11, 21)


PAINLESS_POLICY = """\
grant {
  // Painless compiles scripts to classes at run time
  permission java.lang.RuntimePermission "createClassLoader";
  // and loads the allowlisted classes through their class loader
  permission java.lang.RuntimePermission "getClassLoader";
};
"""

REINDEX_POLICY = """\
grant {
  // reindex from a remote cluster opens connections with the REST client
  permission java.net.SocketPermission "*", "connect";
};

grant codeBase "${codebase.opensearch-rest-client}" {
  // the REST client reads the default proxy from system properties
  permission java.net.NetPermission "getProxySelector";
};

grant codeBase "${codebase.httpasyncclient}" {
  permission java.net.NetPermission "getProxySelector";
};
"""


@dataclass(frozen=True)
class Module:
    """A module the minimal distribution lacks: its folder name, Maven artifact and descriptor fields."""

    name: str
    artifact: str
    description: str
    classnames: tuple[str, ...]  # candidates, newest first: the first one the jar holds is it
    policy: str


MODULES = (
    Module("lang-painless", "lang-painless", "An easy, safe and fast scripting language for OpenSearch",
           ("org.opensearch.painless.PainlessModulePlugin", "org.opensearch.painless.PainlessPlugin"),
           PAINLESS_POLICY),
    Module("reindex", "reindex-client",
           "The Reindex module adds APIs to reindex from one index to another or update documents in place.",
           ("org.opensearch.index.reindex.ReindexModulePlugin", "org.opensearch.index.reindex.ReindexPlugin"),
           REINDEX_POLICY),
)


def module_artifact(module: Module, version: str) -> Artifact:
    return Artifact("org.opensearch.plugin", module.artifact, version, "jar")


def module_classname(module: Module, jar_entries: list[str]) -> str:
    """The module's plugin class, the first of its candidates that the jar holds."""
    for classname in module.classnames:
        if classname.replace(".", "/") + ".class" in jar_entries:
            return classname
    raise LocalNodeError(f"the {module.artifact} jar holds none of {', '.join(module.classnames)}",
                         fix="this OpenSearch version lays the module out differently; report it")


def module_descriptor(module: Module, version: str, classname: str, java_version: str) -> str:
    """plugin-descriptor.properties for a module (the fields OpenSearch's PluginInfo reads)."""
    return (
        f"description={module.description}\n"
        f"version={version}\n"
        f"name={module.name}\n"
        f"classname={classname}\n"
        f"java.version={java_version}\n"
        f"opensearch.version={version}\n"
        "custom.foldername=\n"
        "extended.plugins=\n"
        "has.native.controller=false\n"
    )


def provided_by(lib_jars: list[str], artifact: Artifact) -> bool:
    """Whether the distribution's lib/ already has this artifact (any version): a second copy is jar hell."""
    return any(re.fullmatch(re.escape(artifact.artifact) + r"-\d[\w.-]*\.jar", name) for name in lib_jars)


def parse_properties(text: str) -> dict[str, str]:
    """A Java .properties file's key=value lines (enough for plugin descriptors)."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "!")) or "=" not in line:
            continue
        key, _, value = line.partition("=")
        out[key.strip()] = value.strip()
    return out


def install_order(extends: Mapping[str, list[str]], provided: frozenset[str] = frozenset()) -> list[str]:
    """Plugin names so that each comes after the plugins it extends; LocalNodeError when one is missing.

    `provided` names what the distribution already has (its modules, lang-painless among them).
    """
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str, needed_by: str | None) -> None:
        if name in order or (name in provided and name not in extends):
            return
        if name not in extends:
            raise LocalNodeError(f"plugin {needed_by} extends {name}, which os-rerank does not install",
                                 fix="this OpenSearch version needs another plugin; report it")
        if name in visiting:
            raise LocalNodeError(f"plugins extend each other in a cycle through {name}")
        visiting.add(name)
        for dep in extends[name]:
            visit(dep, name)
        visiting.discard(name)
        order.append(name)

    for name in extends:
        visit(name, None)
    return order


@dataclass(frozen=True)
class NodeSettings:
    """What varies between local nodes."""

    name: str
    port: int
    data: str
    logs: str


def opensearch_yml(settings: NodeSettings) -> str:
    """os-rerank's part of config/opensearch.yml (the security demo installer appends its own for --secure)."""
    return (
        "# Written by `os-rerank local up`: a single laptop node on loopback.\n"
        f"cluster.name: os-rerank-{settings.name}\n"
        f"node.name: {settings.name}\n"
        "discovery.type: single-node\n"
        "network.host: 127.0.0.1\n"
        f"http.port: {settings.port}\n"
        f"path.data: {settings.data}\n"
        f"path.logs: {settings.logs}\n"
        "# A laptop's disk may be fuller than a server's: do not stop allocating shards at 85%.\n"
        "cluster.routing.allocation.disk.threshold_enabled: false\n"
        "# Remote models run on data nodes, and ML Commons' memory breakers (applied to remote models on\n"
        "# 2.12-2.14) would refuse predicts on a small heap.\n"
        "plugins.ml_commons.only_run_on_ml_node: false\n"
        "plugins.ml_commons.jvm_heap_memory_threshold: 100\n"
        "plugins.ml_commons.native_memory_threshold: 100\n"
    )


def heap_options(heap: str) -> str:
    """config/jvm.options.d/os-rerank.options: the heap, equal min and max as OpenSearch recommends."""
    return f"-Xms{heap}\n-Xmx{heap}\n"


def check_heap(heap: str) -> str:
    if not re.fullmatch(r"[1-9]\d*[mMgG]", heap):
        raise ConfigError([f"--heap: expected a size like 1g or 512m, got {heap!r}"])
    size_mb = int(heap[:-1]) * (1024 if heap[-1] in "gG" else 1)
    if size_mb < 512:
        raise ConfigError([f"--heap {heap}: ML Commons and k-NN need at least 512m"])
    return heap
