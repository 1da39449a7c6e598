"""Build a node: fetch every artifact, unpack the distribution, add the modules, install the plugins, configure.

Everything happens in `<home>/.<name>.partial`, renamed to `<home>/<name>` only once complete.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import string
import subprocess
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import LocalNodeError
from ..events import note
from . import distribution as dist
from .host import RunAs, chown_tree
from .layout import NodeInfo, Progress, open_no_follow, quiet
from .maven import Artifact, Cache, Fetched, is_served, pom_dependencies
from .maven_repository import Repository

# --- building a node -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Wanted:
    """The node `local up` was asked for."""

    name: str
    version: str
    port: int
    secure: bool
    heap: str


def artifacts_for(wanted: Wanted) -> list[Artifact]:
    """Every artifact the node is made of, except the modules' dependencies (their POMs name them)."""
    return [dist.distribution_artifact(wanted.version),
            *(dist.module_artifact(m, wanted.version) for m in dist.MODULES),
            *dist.plugin_artifacts(wanted.version, secure=wanted.secure)]


def check_served(artifacts: list[Artifact], repo: Repository) -> None:
    """LocalNodeError naming every artifact the repository lacks, before anything is downloaded."""
    missing = [a.coordinates for a in artifacts if not is_served(a, repo)]
    if missing:
        raise LocalNodeError(
            f"{repo.shown} ({repo.source}) does not serve {len(missing)} artifact(s) this version needs: "
            + ", ".join(missing),
            fix="pick a version it serves (2.19.1 is known to be), or point --repository at a Maven repository "
            "that has them")


def build_node(wanted: Wanted, home: Path, cache: Cache, java: tuple[Path, int], run_as: RunAs,
               progress: Progress = quiet) -> NodeInfo:
    """Download (or take from the cache) every artifact and assemble the node; returns what was built."""
    started = time.monotonic()
    artifacts = artifacts_for(wanted)
    check_served(artifacts, cache.repo)
    fetched = {a.coordinates: cache.fetch(a) for a in artifacts}
    with zipfile.ZipFile(fetched[artifacts[0].coordinates].path) as archive:
        lib_jars = [n.rsplit("/", 1)[-1] for n in archive.namelist() if re.fullmatch(r"[^/]+/lib/[^/]+\.jar", n)]
    modules = {m.name: module_jars(dist.module_artifact(m, wanted.version), cache, lib_jars) for m in dist.MODULES}
    fetched.update((f.artifact.coordinates, f) for jars in modules.values() for f in jars)

    staging = home / f".{wanted.name}.partial"
    target = home / wanted.name
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        progress(note(f"assembling OpenSearch {wanted.version} in {target}"))
        distribution = _unpack(fetched[dist.distribution_artifact(wanted.version).coordinates], staging)
        for module in dist.MODULES:
            _add_module(distribution, module, wanted.version, [f.path for f in modules[module.name]])
        plugins = [fetched[a.coordinates] for a in dist.plugin_artifacts(wanted.version, secure=wanted.secure)]
        _install_plugins(distribution, plugins, java[0], progress)
        settings = dist.NodeSettings(wanted.name, wanted.port, str(target / "data"), str(target / "logs"))
        with (distribution / "config" / "opensearch.yml").open("a", encoding="utf-8") as yml:
            yml.write("\n" + dist.opensearch_yml(settings))
        (distribution / "config" / "jvm.options.d" / "os-rerank.options").write_text(dist.heap_options(wanted.heap))
        for sub in ("data", "logs"):
            (staging / sub).mkdir()
        if wanted.secure:
            _secure(staging, distribution, java[0], progress)
        info = NodeInfo(wanted.name, wanted.version, wanted.port, wanted.secure, wanted.heap, str(java[0]), java[1],
                        str(target), round(time.monotonic() - started, 1),
                        {c: f.sha1 for c, f in fetched.items()})
        (staging / "node.json").write_text(json.dumps(info.to_json(), indent=2) + "\n", encoding="utf-8")
        chown_tree(staging, run_as)
        if wanted.secure:  # the password stays the caller's; the node never reads it
            password = staging / "admin-password"
            os.chown(password, os.getuid(), os.getgid())
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return info


def _unpack(zipped: Fetched, into: Path) -> Path:
    with zipfile.ZipFile(zipped.path) as archive:
        names = archive.namelist()
        top = {n.split("/", 1)[0] for n in names}
        if len(top) != 1:
            raise LocalNodeError(f"{zipped.path.name}: expected one top folder, found {len(top)}")
        for member in archive.infolist():
            _extract(archive, member, into)
    return into / top.pop()


def _extract(archive: zipfile.ZipFile, member: zipfile.ZipInfo, into: Path) -> None:
    """Extract one member, keeping its Unix mode (zipfile drops it, and bin/ must stay executable)."""
    path = into / member.filename
    if not str(path.resolve()).startswith(str(into.resolve()) + os.sep):
        raise LocalNodeError(f"{archive.filename}: member {member.filename!r} points outside the archive")
    archive.extract(member, into)
    mode = (member.external_attr >> 16) & 0o777
    if mode and not member.is_dir():
        os.chmod(path, mode)


def module_jars(root: Artifact, cache: Cache, lib_jars: list[str]) -> list[Fetched]:
    """The module's jar, then the runtime dependencies its POMs name, transitively, minus what lib/ holds."""
    out: list[Fetched] = []
    queue, seen = [(root, True)], set()
    while queue:
        artifact, transitive = queue.pop(0)
        if artifact.coordinates in seen or dist.provided_by(lib_jars, artifact):
            continue
        seen.add(artifact.coordinates)
        out.append(cache.fetch(artifact))
        if transitive:
            pom = cache.fetch(artifact.sibling("pom")).path.read_text(encoding="utf-8")
            queue += [(d.artifact, d.transitive) for d in pom_dependencies(pom)]
    return out


def _add_module(distribution: Path, module: dist.Module, version: str, jars: list[Path]) -> None:
    folder = distribution / "modules" / module.name
    if folder.exists():
        return  # a distribution that ships it
    folder.mkdir(parents=True)
    for jar in jars:
        shutil.copyfile(jar, folder / jar.name)
    with zipfile.ZipFile(jars[0]) as archive:
        classname = dist.module_classname(module, archive.namelist())
    netty = dist.parse_properties((distribution / "modules" / "transport-netty4" /
                                   "plugin-descriptor.properties").read_text(encoding="utf-8"))
    descriptor = dist.module_descriptor(module, version, classname, netty.get("java.version", "11"))
    (folder / "plugin-descriptor.properties").write_text(descriptor, encoding="utf-8")
    (folder / "plugin-security.policy").write_text(module.policy, encoding="utf-8")


def _install_plugins(distribution: Path, plugins: list[Fetched], java_home: Path, progress: Progress) -> None:
    by_name: dict[str, Fetched] = {}
    extends: dict[str, list[str]] = {}
    for plugin in plugins:
        with zipfile.ZipFile(plugin.path) as archive:
            descriptor = next((n for n in archive.namelist() if n.endswith("plugin-descriptor.properties")), None)
            if descriptor is None:
                raise LocalNodeError(f"{plugin.path.name}: not an OpenSearch plugin (no plugin-descriptor.properties)")
            props = dist.parse_properties(archive.read(descriptor).decode("utf-8"))
        name = props.get("name", plugin.artifact.artifact)
        by_name[name] = plugin
        extends[name] = [p.strip() for p in props.get("extended.plugins", "").split(",") if p.strip()]
    modules = frozenset(p.name for p in (distribution / "modules").iterdir())
    for name in dist.install_order(extends, modules):
        progress(note(f"installing plugin {name}"))
        done = subprocess.run(
            [str(distribution / "bin" / "opensearch-plugin"), "install", "--batch", by_name[name].path.as_uri()],
            env=java_env(java_home), capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0:
            tail = " ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
            raise LocalNodeError(f"installing plugin {name} failed: {tail}")


def java_env(java_home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENSEARCH_", "JAVA_TOOL_OPTIONS"))}
    env.update(JAVA_HOME=str(java_home), OPENSEARCH_JAVA_HOME=str(java_home))
    return env


def make_password() -> str:
    """A strong admin password (the security plugin refuses weak ones and ones like the user name)."""
    alphabet = string.ascii_letters + string.digits
    core = "".join(secrets.choice(alphabet) for _ in range(20))
    return f"{secrets.choice(string.ascii_uppercase)}{core}{secrets.choice(string.digits)}-{secrets.choice('._~')}"


def _secure(staging: Path, distribution: Path, java_home: Path, progress: Progress) -> None:
    """The security plugin's demo configuration: TLS with its demo CA, basic auth, `admin` with our password."""
    progress(note("configuring the security plugin (demo certificates, admin password)"))
    password = make_password()
    tool = distribution / "plugins" / "opensearch-security" / "tools" / "install_demo_configuration.sh"
    env = java_env(java_home)
    env["OPENSEARCH_INITIAL_ADMIN_PASSWORD"] = password
    done = subprocess.run(["bash", str(tool), "-y", "-i", "-s"], env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    if done.returncode != 0:
        tail = " ".join((done.stderr or done.stdout).strip().splitlines()[-3:]).replace(password, "***")
        raise LocalNodeError(f"the security plugin's demo configuration failed: {tail}")
    secret = staging / "admin-password"
    secret.touch(mode=0o600)
    secret.write_text(password + "\n", encoding="utf-8")
    shutil.copyfile(distribution / "config" / "root-ca.pem", staging / "root-ca.pem")


def reconfigure(node: NodeInfo, port: int, heap: str) -> NodeInfo:
    """A stopped node with another port or heap: rewrite those two lines, keep the data."""
    if port == node.port and heap == node.heap:
        return node
    yml = node.distribution / "config" / "opensearch.yml"
    text = re.sub(r"(?m)^http\.port: \d+$", f"http.port: {port}", yml.read_text(encoding="utf-8"))
    _rewrite(yml, text)
    _rewrite(node.distribution / "config" / "jvm.options.d" / "os-rerank.options", dist.heap_options(heap))
    updated = NodeInfo(**{**node.to_json(), "port": port, "heap": heap})
    _rewrite(node.path / "node.json", json.dumps(updated.to_json(), indent=2) + "\n")
    return updated


def _rewrite(path: Path, text: str) -> None:
    """Replace a file's text in place, never through a symbolic link (see layout.open_no_follow)."""
    fd = open_no_follow(path, os.O_WRONLY | os.O_TRUNC)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
