"""The double's state, its error type, the per-version settings registry and the recorded response shapes.

Nothing here talks HTTP; `http.py` serves it and `mlcommons.py` / `search.py` act on it.
"""

from __future__ import annotations

import copy
import json
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Version = tuple[int, int, int]

SHAPES_DIR = Path(__file__).resolve().parent.parent / "data" / "opensearch"
NODE_ID = "4p6FVOmJRtu3wehDD74hzQ"
NODE_NAME = "opensearch-node1"


def parse_version(number: str) -> Version:
    """(major, minor, patch) from "2.19.0" (a "-SNAPSHOT" suffix is ignored)."""
    parts = number.split("-")[0].split(".")
    major, minor, patch = (int(p) for p in (parts + ["0", "0"])[:3])
    return (major, minor, patch)


def load_shape(name: str) -> Any:
    """A deep copy of the recorded response shape `tests/data/opensearch/<name>.json`."""
    return copy.deepcopy(_SHAPES.setdefault(name, json.loads((SHAPES_DIR / f"{name}.json").read_text("utf-8"))))


_SHAPES: dict[str, Any] = {}


def ordered_like(shape_name: str, values: dict[str, Any]) -> dict[str, Any]:
    """`values` with keys in the order of the recorded shape; keys the shape lacks go last, absent ones are left out."""
    shape = load_shape(shape_name)
    out = {k: values[k] for k in shape if k in values}
    out.update({k: v for k, v in values.items() if k not in out})
    return out


class ApiError(Exception):
    """An OpenSearch error response: `{"error": {"root_cause": [...], "type", "reason"}, "status"}`."""

    def __init__(self, status: int, type_: str, reason: str | None, *, extra: dict[str, Any] | None = None,
                 root: tuple[str, str | None] | None = None, caused_by: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.type = type_
        self.reason = reason
        self.extra = extra or {}
        self.root = root
        self.caused_by = caused_by

    def body(self) -> dict[str, Any]:
        root_type, root_reason = self.root or (self.type, self.reason)
        root_cause = {"type": root_type, "reason": root_reason}
        if self.root is None:
            root_cause.update(self.extra)
        error: dict[str, Any] = {"root_cause": [root_cause], "type": self.type, "reason": self.reason}
        error.update(self.extra)
        if self.caused_by:
            error["caused_by"] = self.caused_by
        return {"error": error, "status": self.status}


def illegal_argument(reason: str) -> ApiError:
    return ApiError(400, "illegal_argument_exception", reason)


def status_exception(status: int, reason: str) -> ApiError:
    """OpenSearchStatusException, the type ML Commons uses for most of its REST errors."""
    return ApiError(status, "status_exception", reason)


def index_not_found(index: str) -> ApiError:
    return ApiError(404, "index_not_found_exception", f"no such index [{index}]",
                    extra={"index": index, "resource.id": index, "resource.type": "index_or_alias",
                           "index_uuid": "_na_"})


# --- settings --------------------------------------------------------------------------------------------------

_REGEX_2_11 = [
    r"^https://runtime\.sagemaker\..*[a-z0-9-]\.amazonaws\.com/.*$",
    r"^https://api\.openai\.com/.*$",
    r"^https://api\.cohere\.ai/.*$",
    r"^https://bedrock-runtime\..*[a-z0-9-]\.amazonaws\.com/.*$",
]
_REGEX_2_16 = [
    r"^https://api\.sagemaker\..*[a-z0-9-]\.amazonaws\.com/.*$",
    r"^https://bedrock-agent-runtime\..*[a-z0-9-]\.amazonaws\.com/.*$",
]
_REGEX_2_18 = [
    r"^https://bedrock\..*[a-z0-9-]\.amazonaws\.com/.*$",
    r"^https://textract\..*[a-z0-9-]\.amazonaws\.com$",
    r"^https://comprehend\..*[a-z0-9-]\.amazonaws\.com$",
]
_REGEX_2_19 = [r"^https://api\.deepseek\.com/.*$"]


def default_trusted_regex(version: Version) -> list[str]:
    """The default `plugins.ml_commons.trusted_connector_endpoints_regex` of that version.

    docs/ml-commons.md#trusted-endpoints
    """
    out = list(_REGEX_2_11)
    if version >= (2, 16, 0):
        out += _REGEX_2_16
    if version >= (2, 18, 0):
        out += _REGEX_2_18
    if version >= (2, 19, 0):
        out += _REGEX_2_19
    return out


@dataclass(frozen=True)
class SettingDef:
    default: Any
    since: Version = (2, 0, 0)
    until: Version | None = None  # last version that has it
    dynamic: bool = True


ML = "plugins.ml_commons."
# Values are strings, as `GET _cluster/settings?include_defaults` shows them; lists stay lists.
SETTINGS: dict[str, SettingDef] = {
    ML + "trusted_connector_endpoints_regex": SettingDef(None),  # per version, see default_trusted_regex
    ML + "connector.private_ip_enabled": SettingDef("false", since=(2, 15, 0)),
    ML + "trusted_connector_private_endpoints_regex": SettingDef([], since=(3, 7, 0)),
    ML + "connector.restricted_ip_patterns": SettingDef([], since=(3, 7, 0), dynamic=False),
    ML + "remote_inference.enabled": SettingDef("true"),
    ML + "only_run_on_ml_node": SettingDef("true"),
    ML + "task_dispatcher.eligible_node_role.remote_model": SettingDef(["data", "ml"]),
    ML + "model_access_control_enabled": SettingDef("false"),
    ML + "connector_access_control_enabled": SettingDef("false"),
    ML + "jvm_heap_memory_threshold": SettingDef("85"),
    ML + "native_memory_threshold": SettingDef("90"),
    ML + "disk_free_space_threshold": SettingDef("5gb", since=(2, 16, 0)),
    ML + "model_auto_deploy.enable": SettingDef("true", since=(2, 13, 0)),
    ML + "allow_registering_model_via_url": SettingDef("false"),
    ML + "allow_registering_model_via_local_file": SettingDef("false"),
    ML + "update_connector.enabled": SettingDef("false", until=(2, 11, 99)),
    ML + "max_json_size": SettingDef("100000000", since=(3, 5, 0)),
    "plugins.neural_search.reranker_max_document_fields": SettingDef("50", dynamic=False),
    "plugins.flow_framework.enabled": SettingDef("true"),
}


def known_setting(key: str, version: Version) -> SettingDef | None:
    spec = SETTINGS.get(key)
    if spec is None or version < spec.since or (spec.until is not None and version > spec.until):
        return None
    return spec


def is_checked_namespace(key: str) -> bool:
    """Keys under these prefixes must be registered; other (core) keys are accepted as they come."""
    return key.startswith(("plugins.ml_commons.", "plugins.neural_search.", "plugins.flow_framework."))


# --- the cluster -----------------------------------------------------------------------------------------------


@dataclass
class Index:
    name: str
    uuid: str
    mappings: dict[str, Any]
    settings: dict[str, Any]
    docs: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> source, in insertion (doc id) order
    versions: dict[str, int] = field(default_factory=dict)
    visible: set[str] = field(default_factory=set)  # ids a refresh has made searchable
    deleted_unrefreshed: set[str] = field(default_factory=set)
    last_write: float = 0.0
    seq_no: int = -1


@dataclass
class ClusterState:
    """Everything the double knows; guarded by `lock`."""

    version: Version
    plugins: set[str]
    persistent: dict[str, Any] = field(default_factory=dict)  # flat keys
    transient: dict[str, Any] = field(default_factory=dict)
    connectors: dict[str, dict[str, Any]] = field(default_factory=dict)  # stored docs, credential included
    model_groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    indices: dict[str, Index] = field(default_factory=dict)
    pipelines: dict[str, dict[str, Any]] = field(default_factory=dict)
    seq_no: dict[str, int] = field(default_factory=dict)  # per system index
    lock: threading.RLock = field(default_factory=threading.RLock)
    rng: random.Random = field(default_factory=lambda: random.Random(20240212))

    def setting(self, key: str) -> Any:
        """Effective value: transient over persistent over the version's default."""
        if key in self.transient:
            return self.transient[key]
        if key in self.persistent:
            return self.persistent[key]
        return self.default_setting(key)

    def default_setting(self, key: str) -> Any:
        if key == ML + "trusted_connector_endpoints_regex":
            return default_trusted_regex(self.version)
        spec = known_setting(key, self.version)
        return copy.deepcopy(spec.default) if spec else None

    def flag(self, key: str) -> bool:
        return str(self.setting(key)).lower() == "true"

    def new_id(self) -> str:
        """A 20-character id like the ones OpenSearch generates (deterministic per double)."""
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        return "".join(self.rng.choice(alphabet) for _ in range(20))

    def next_seq(self, index: str) -> int:
        self.seq_no[index] = self.seq_no.get(index, -1) + 1
        return self.seq_no[index]


def now_ms() -> int:
    return int(time.time() * 1000)


def doc_write_response(index: str, doc_id: str, result: str, version: int, seq_no: int,
                       *, forced_refresh: bool = False) -> dict[str, Any]:
    """The index/update/delete response shape (`doc_write.json`)."""
    body = load_shape("doc_write")
    body.update({"_index": index, "_id": doc_id, "_version": version, "result": result, "_seq_no": seq_no})
    if not forced_refresh:
        body.pop("forced_refresh")
    return body
