"""What this machine lends a node: a JDK that can run its version, and a user to run it as (never root)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import LocalNodeError
from . import distribution as dist
from .layout import HOME_ENV

NODE_USER = "os-rerank"



def java_feature(java: Path) -> int | None:
    """The feature release (17, 21, ...) of a `java` binary, or None when it does not run."""
    try:
        done = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', done.stderr + done.stdout)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major  # "1.8.0" is Java 8


# Where distributions put JDKs (Debian and Ubuntu's packages, and the Temurin/Docker convention).
SYSTEM_JVM_ROOTS = (Path("/usr/lib/jvm"), Path("/opt/java"))


def java_candidates(environ: Mapping[str, str], roots: tuple[Path, ...] = SYSTEM_JVM_ROOTS) -> list[Path]:
    """JDK homes to try, most explicit first: OPENSEARCH_JAVA_HOME, JAVA_HOME, `java` on PATH, then `roots`."""
    homes: list[Path] = []
    for var in ("OPENSEARCH_JAVA_HOME", "JAVA_HOME"):
        if environ.get(var):
            homes.append(Path(environ[var]))
    on_path = shutil.which("java", path=environ.get("PATH"))
    if on_path:
        homes.append(Path(os.path.realpath(on_path)).parent.parent)
    for root in roots:
        if root.is_dir():
            homes.extend(sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()))
    out: list[Path] = []
    for home in homes:
        real = Path(os.path.realpath(home))
        if real not in out:
            out.append(real)
    return out


def find_java(version: dist.Version, environ: Mapping[str, str],
              roots: tuple[Path, ...] = SYSTEM_JVM_ROOTS) -> tuple[Path, int]:
    """A JDK home able to run OpenSearch `version`, and its feature release; LocalNodeError naming what was found."""
    low, high = dist.java_range(version)
    found: list[str] = []
    for home in java_candidates(environ, roots):
        feature = java_feature(home / "bin" / "java")
        if feature is None:
            continue
        if low <= feature and (high is None or feature <= high):
            return home, feature
        found.append(f"{feature} ({home})")
    wanted = f"Java {low} to {high}" if high else f"Java {low} or newer"
    shown = ".".join(str(n) for n in version)
    if not found:
        raise LocalNodeError(f"OpenSearch {shown} needs {wanted}, and no Java was found",
                             fix=f"install a JDK (Debian: apt-get install openjdk-{min(high or 21, 21)}-jdk-headless) "
                             "or set OPENSEARCH_JAVA_HOME")
    raise LocalNodeError(f"OpenSearch {shown} needs {wanted}; found only Java {', '.join(found)}",
                         fix="install a suitable JDK and set OPENSEARCH_JAVA_HOME to it")


# --- the unprivileged user -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunAs:
    """The user the node runs as: None when os-rerank itself is not root."""

    uid: int | None = None
    gid: int | None = None
    name: str | None = None


def node_user(*, create: bool) -> RunAs:
    """As root: the `os-rerank` system user (created when `create`); otherwise the caller."""
    if os.geteuid() != 0:
        return RunAs()
    import pwd

    try:
        entry = pwd.getpwnam(NODE_USER)
    except KeyError:
        if not create:
            raise LocalNodeError(f"user {NODE_USER} does not exist", fix="run `os-rerank local up` as root") from None
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        done = subprocess.run([useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", NODE_USER],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise LocalNodeError(f"cannot create the user {NODE_USER} that OpenSearch runs as (it refuses root): "
                                 f"{done.stderr.strip() or done.returncode}",
                                 fix=f"create it yourself: useradd --system {NODE_USER}") from None
        entry = pwd.getpwnam(NODE_USER)
    return RunAs(entry.pw_uid, entry.pw_gid, NODE_USER)


def chown_tree(path: Path, run_as: RunAs) -> None:
    if run_as.uid is None or run_as.gid is None:
        return
    os.chown(path, run_as.uid, run_as.gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(root, name), run_as.uid, run_as.gid, follow_symlinks=False)


def check_reachable(path: Path, run_as: RunAs) -> None:
    """The node's user must be able to walk down to its folder."""
    if run_as.uid is None:
        return
    for parent in path.parents:
        st = parent.stat()
        if not st.st_mode & 0o001 and st.st_uid != run_as.uid:
            raise LocalNodeError(f"user {run_as.name} cannot reach {path}: {parent} is closed to other users",
                                 fix=f"pick another --dir (or {HOME_ENV}) under a folder others may enter")


