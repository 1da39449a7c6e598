"""Where local nodes live and what node.json records about each. No processes, no network.

Layout, under the home folder (`--dir`, OS_RERANK_LOCAL_HOME; default ~/.local/share/os-rerank/local, or
/var/lib/os-rerank/local for root, since the node's own user must be able to reach it):

    <home>/<name>/node.json            what was built: version, port, security, heap, Java
    <home>/<name>/opensearch-<version> the distribution with its modules, plugins and config
    <home>/<name>/data, logs           the node's data and logs
    <home>/<name>/opensearch.pid       written by OpenSearch while it runs
    <home>/<name>/root-ca.pem          --secure: the CA of the node's certificate
    <home>/<name>/admin-password       --secure: the admin password (mode 600, never printed)

A node is built in `<home>/.<name>.partial` and renamed when complete, so an interrupted build leaves nothing that
looks like a node.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, LocalNodeError
from ..events import OnEvent, ignore

Progress = OnEvent  # the one progress callback (events.py): each line is a `note`
quiet = ignore


HOME_ENV = "OS_RERANK_LOCAL_HOME"
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")


def check_name(name: str) -> str:
    """A node name is a folder name and part of the cluster name: letters, digits, `-` and `_`."""
    if not _NAME.fullmatch(name):
        raise ConfigError([f"--name: {name!r} is not a node name"],
                          fix="use lower-case letters, digits, - and _ (at most 40), starting with a letter or digit")
    return name


def check_port(port: int) -> int:
    if not 1024 <= port <= 65535:
        raise ConfigError([f"--port: {port} is not a port a node can listen on"], fix="pick one from 1024 to 65535")
    return port


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if needed): two `local up` for one node, or two downloads of one
    file, wait for each other instead of deleting each other's work."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def open_no_follow(path: Path, flags: int, mode: int = 0o644) -> int:
    """os.open that refuses a symbolic link: root writes into folders the node's user owns, and must not be led
    elsewhere by a link planted there."""
    return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
CACHE_ENV = "OS_RERANK_CACHE"
ADMIN_USER = "admin"



def default_home(environ: Mapping[str, str]) -> Path:
    if environ.get(HOME_ENV):
        return Path(environ[HOME_ENV]).expanduser().absolute()
    if os.geteuid() == 0:
        return Path("/var/lib/os-rerank/local")
    base = Path(environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "os-rerank" / "local"


def default_cache(environ: Mapping[str, str]) -> Path:
    if environ.get(CACHE_ENV):
        return Path(environ[CACHE_ENV]).expanduser()
    base = Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "os-rerank" / "maven"


def default_name(secure: bool) -> str:
    return "secure" if secure else "plain"


@dataclass(frozen=True)
class NodeInfo:
    """A built node, as node.json records it."""

    name: str
    version: str
    port: int
    secure: bool
    heap: str
    java_home: str
    java_version: int
    folder: str
    built_seconds: float = 0.0
    artifacts: dict[str, str] = field(default_factory=dict)  # coordinates -> SHA-1

    @property
    def url(self) -> str:
        return f"{'https' if self.secure else 'http'}://127.0.0.1:{self.port}"

    @property
    def path(self) -> Path:
        return Path(self.folder)

    @property
    def distribution(self) -> Path:
        return self.path / f"opensearch-{self.version}"

    @property
    def ca_certs(self) -> Path | None:
        return self.path / "root-ca.pem" if self.secure else None

    @property
    def password_file(self) -> Path | None:
        return self.path / "admin-password" if self.secure else None

    @property
    def pid_file(self) -> Path:
        return self.path / "opensearch.pid"

    @property
    def log_file(self) -> Path:
        return self.path / "logs" / f"os-rerank-{self.name}.log"

    def password(self) -> str | None:
        if self.password_file is None:
            return None
        try:
            fd = open_no_follow(self.password_file, os.O_RDONLY)
            with os.fdopen(fd, encoding="utf-8") as handle:
                if os.fstat(handle.fileno()).st_uid != os.getuid():
                    raise LocalNodeError(f"{self.password_file} is not owned by this user: not reading it",
                                         fix="remove the node (`local down --purge`) and build it again")
                return handle.read().strip()
        except OSError as exc:
            raise LocalNodeError(f"cannot read the admin password of node {self.name}: {exc.strerror}",
                                 fix="run as the user that ran `os-rerank local up`") from None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def load_node(home: Path, name: str) -> NodeInfo | None:
    path = home / name / "node.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise LocalNodeError(f"{path}: unreadable ({exc})", fix=f"remove {home / name} and run `local up` again") \
            from None
    fields = set(NodeInfo.__dataclass_fields__)
    return NodeInfo(**{k: v for k, v in data.items() if k in fields})


def list_nodes(home: Path) -> list[NodeInfo]:
    if not home.is_dir():
        return []
    nodes = [load_node(home, p.name) for p in sorted(home.iterdir()) if p.is_dir() and not p.name.startswith(".")]
    return [n for n in nodes if n is not None]


