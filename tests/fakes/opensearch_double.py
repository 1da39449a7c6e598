"""`OpenSearchDouble`: a real HTTP server that behaves like OpenSearch + ML Commons + neural-search for os-rerank.

    with OpenSearchDouble(glue, version="2.19.0") as double:
        client = OpenSearch(hosts=[double.url])
        ...
        assert double.writes() == []

The CLI talks to it exactly as to a cluster (opensearch-py and urllib3 run for real). Behaviour and error texts per
version follow docs/ml-commons.md; the response shapes come from tests/data/opensearch/.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from .http import Fault, HttpFront, RecordedRequest, Request, Response, Router
from .mlcommons import MLCommons
from .predict import Glue, RemoteCaller
from .search import Search, nest
from .security import Security
from .state import (
    NODE_NAME,
    SETTINGS,
    ApiError,
    ClusterState,
    illegal_argument,
    is_checked_namespace,
    known_setting,
    load_shape,
    parse_version,
)

DEFAULT_PLUGINS = frozenset(c["component"] for c in load_shape("cat_plugins"))
_LUCENE = {(2, 12): "9.9.2", (2, 13): "9.10.0", (2, 14): "9.10.0", (2, 15): "9.10.0", (2, 16): "9.11.1",
           (2, 17): "9.11.1", (2, 18): "9.12.0", (2, 19): "9.12.1", (3, 0): "10.1.0", (3, 1): "10.2.1"}


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> dict[str, Any]:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else k, v, out)
    else:
        out[prefix] = value
    return out


def _setting_value(value: Any) -> Any:
    if isinstance(value, list):
        return [str(v).lower() if isinstance(v, bool) else str(v) for v in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class OpenSearchDouble:
    """A started-on-demand OpenSearch 2.12+ double with ML Commons and neural-search; see the module docstring."""

    def __init__(self, glue: Glue | None = None, *, version: str = "2.19.0",
                 plugins: Iterable[str] | None = None, absent_plugins: Iterable[str] = (),
                 master_key_failures: int = 0, polls_until_deployed: int = 1, refresh_interval: float = 1.0,
                 remote_timeout_cap: float = 30.0, ml_search_lag: float = 0.3,
                 search_pipeline_common: bool = False) -> None:
        self.glue = glue
        self._version_number = version
        self._plugins = set(DEFAULT_PLUGINS if plugins is None else plugins) - set(absent_plugins)
        self._options = {"master_key_failures": master_key_failures, "polls_until_deployed": polls_until_deployed,
                         "refresh_interval": refresh_interval, "remote_timeout_cap": remote_timeout_cap,
                         "ml_search_lag": ml_search_lag, "search_pipeline_common": search_pipeline_common}
        self.router = Router()
        self.front = HttpFront(self.router, after=self._observe)
        self._build()

    def _build(self) -> None:
        self.state = ClusterState(parse_version(self._version_number), set(self._plugins))
        self.caller = RemoteCaller(self.state, self.glue, timeout_cap=self._options["remote_timeout_cap"])
        has_ml = "opensearch-ml" in self._plugins
        self.ml = MLCommons(self.state, self.caller, master_key_failures=self._options["master_key_failures"],
                            polls_until_deployed=self._options["polls_until_deployed"],
                            search_lag=self._options["ml_search_lag"]) if has_ml else None
        self.search = Search(self.state, self.ml, refresh_interval=self._options["refresh_interval"],
                             common_module=bool(self._options["search_pipeline_common"]))
        self.router.routes.clear()
        self.router.add("GET|HEAD", "/", self.root)
        self.router.add("GET", "/_cat/plugins", self.cat_plugins)
        self.router.add("GET", "/_cluster/health(?:/[^/]+)?", self.health)
        self.router.add("GET", "/_cluster/settings", self.get_settings)
        self.router.add("PUT", "/_cluster/settings", self.put_settings)
        self.router.add("GET", "/_nodes/search_pipelines", self.nodes_search_pipelines)
        if self.ml is not None:
            self.ml.routes(self.router)
        from .workbench import Workbench

        self.workbench = Workbench(self.state)
        if "opensearch-search-relevance" in self._plugins:
            self.workbench.routes(self.router)
        self.search.routes(self.router)

    def _observe(self) -> None:
        if self.ml is not None:
            self.ml.observe()

    def settle_searches(self) -> None:
        """Let ML Commons' searches catch up with every write so far, as a second of waiting would on a node."""
        if self.ml is not None:
            self.ml.observe()
            self.ml.lag.age(self.ml.lag.lag)

    # --- lifecycle and test controls ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.front.url

    @property
    def requests(self) -> list[RecordedRequest]:
        return list(self.front.requests)

    @property
    def remote_calls(self) -> list[dict[str, Any]]:
        """Every request the double sent to a connector endpoint (url, method, signed headers, body, status)."""
        return list(self.caller.calls)

    def writes(self, *, locks: bool = False) -> list[RecordedRequest]:
        """The recorded writes: PUT/POST/DELETE except `_search`, `_count`, `_predict`; os-rerank's lock index
        (os_rerank/provision/lock.py) is bookkeeping, left out unless `locks`, as os-rerank's own write count
        leaves it out."""
        return [r for r in self.front.requests
                if r.is_write and (locks or not r.path.startswith("/os-rerank-lock-"))]

    def clear_requests(self) -> None:
        self.front.requests.clear()

    def inject(self, method: str, path_regex: str, *, status: int, body: Any = None, times: int = 1) -> None:
        """Answer the next `times` matching requests (`method` or "*"; `re.search` on the path) with an error."""
        self.front.add_fault(Fault(method.upper(), re.compile(path_regex), times, status=status, body=body))

    def drop(self, method: str, path_regex: str, times: int = 1, *, applied: bool = False) -> None:
        """Close the connection of the next `times` matching requests without answering.

        With `applied=True` the request is carried out first (the answer is lost, the write is not).
        """
        self.front.add_fault(Fault(method.upper(), re.compile(path_regex), times, drop=True, applied=applied))

    def enable_security(self) -> Security:
        """From now on, answer as a node with the security plugin: add users to the returned Security."""
        security = Security()
        self.front.gate = security.gate
        self._plugins.add("opensearch-security")
        self.state.plugins.add("opensearch-security")
        return security

    def remove_plugin(self, component: str) -> None:
        """Behave as a node without `component` (e.g. opensearch-security) from now on."""
        self._plugins.discard(component)
        self.state.plugins.discard(component)

    def set_version(self, number: str) -> None:
        """Behave as another OpenSearch version from now on (state is kept)."""
        self._version_number = number
        self.state.version = parse_version(number)

    def reset(self) -> None:
        """A fresh, empty cluster of the same version; recorded requests and pending faults are cleared too."""
        self.front.requests.clear()
        self.front.faults.clear()
        self._build()

    def start(self) -> OpenSearchDouble:
        self.front.start()
        return self

    def stop(self) -> None:
        self.front.stop()

    def __enter__(self) -> OpenSearchDouble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- core endpoints -----------------------------------------------------------------------------------------

    def _plugin_version(self) -> str:
        return ".".join(str(p) for p in self.state.version) + ".0"

    def root(self, req: Request) -> Response:
        body = load_shape("root")
        body["version"]["number"] = self._version_number
        major, minor, _ = self.state.version
        body["version"]["lucene_version"] = _LUCENE.get((major, minor), body["version"]["lucene_version"])
        return Response(200, None if req.method == "HEAD" else body)

    def cat_plugins(self, req: Request) -> Response:
        rows = [dict(row, version=self._plugin_version()) for row in load_shape("cat_plugins")
                if row["component"] in self._plugins]
        rows += [{"name": NODE_NAME, "component": c, "version": self._plugin_version()}
                 for c in sorted(self._plugins - DEFAULT_PLUGINS)]
        if req.params.get("format") == "json":
            return Response(200, rows)
        return Response(200, "".join(f"{r['name']} {r['component']} {r['version']}\n" for r in rows))

    def health(self, req: Request) -> Response:
        body = load_shape("cluster_health")
        with self.state.lock:
            body["active_primary_shards"] = body["active_shards"] = len(self.state.indices)
            body["status"] = "yellow" if self.state.indices else "green"
        return Response(200, body)

    def nodes_search_pipelines(self, req: Request) -> Response:
        """The processor types the node offers: as recorded from a 2.19.1 node built by `os-rerank local` (no
        search-pipeline-common), plus that module's processors when the double has it (a full distribution)."""
        from .rerank import COMMON_REQUEST, COMMON_RESPONSE

        body = load_shape("nodes_search_pipelines")
        node = next(iter(body["nodes"].values()))
        node["version"] = self._version_number
        if self.search.common_module:
            pipelines = node["search_pipelines"]
            for key, names in (("request_processors", COMMON_REQUEST), ("response_processors", COMMON_RESPONSE)):
                pipelines[key] = sorted(pipelines[key] + [{"type": n} for n in names], key=lambda p: p["type"])
        return Response(200, body)

    def get_settings(self, req: Request) -> Response:
        flat = req.flag("flat_settings")
        shape = (lambda d: dict(sorted(d.items()))) if flat else nest
        with self.state.lock:
            body = {"persistent": shape(dict(self.state.persistent)), "transient": shape(dict(self.state.transient))}
            if req.flag("include_defaults"):
                defaults = {k: self.state.default_setting(k) for k in SETTINGS
                            if known_setting(k, self.state.version) and k not in self.state.persistent
                            and k not in self.state.transient}
                body["defaults"] = shape(defaults)
        return Response(200, body)

    def put_settings(self, req: Request) -> Response:
        body = req.json({})
        if not isinstance(body, dict) or not (set(body) & {"persistent", "transient"}):
            raise ApiError(400, "action_request_validation_exception", "Validation Failed: 1: no settings to update;")
        updates: dict[str, dict[str, Any]] = {}
        for scope in ("persistent", "transient"):
            flat = _flatten("", body.get(scope) or {}, {})
            for key in flat:
                if is_checked_namespace(key):
                    spec = known_setting(key, self.state.version)
                    if spec is None:
                        raise illegal_argument(f"{scope} setting [{key}], not recognized")
                    if not spec.dynamic:
                        raise illegal_argument(f"{scope} setting [{key}], not dynamically updateable")
            updates[scope] = flat
        with self.state.lock:
            for scope, flat in updates.items():
                store = self.state.persistent if scope == "persistent" else self.state.transient
                for key, value in flat.items():
                    if value is None:
                        store.pop(key, None)
                    else:
                        store[key] = _setting_value(value)
        return Response(200, {"acknowledged": True,
                              "persistent": nest({k: _setting_value(v) for k, v in updates["persistent"].items()
                                                   if v is not None}),
                              "transient": nest({k: _setting_value(v) for k, v in updates["transient"].items()
                                                  if v is not None})})
