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

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import LocalNodeError

HOME_ENV = "OS_RERANK_LOCAL_HOME"
CACHE_ENV = "OS_RERANK_CACHE"
ADMIN_USER = "admin"



def default_home(environ: Mapping[str, str]) -> Path:
    if environ.get(HOME_ENV):
        return Path(environ[HOME_ENV]).expanduser()
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
            return self.password_file.read_text(encoding="utf-8").strip()
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


