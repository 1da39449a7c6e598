"""What os-rerank sends and what a real node answers, as a script of requests, recorded to keep the double honest.

`STEPS` is the life of one rerank setup on a fresh cluster, made of the requests os-rerank sends (bodies from its
own render functions) plus the refusals it must understand (updating or deleting what is in use, what is gone).
`run_steps` plays them against any cluster; `summarise` keeps of each answer what os-rerank depends on: the status,
the shape (keys and value types, recursively), and for errors their type and reason (ids replaced by names).

- `scripts/record-real` plays them on a fresh real node and writes tests/data/recorded/opensearch-<version>.json.
- tests/test_recorded.py plays them on a fresh double and on a fresh real node, and compares both with the file:
  where the double differs from the recording the double is wrong; where the node differs, the recording is stale.
Searches over ML Commons' system indices run after `settle`: on a real node a 1.5 s wait, longer than the second
in which it refreshes them; on the double, catching its lag up. The lag itself is tested in tests/test_double.py.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from os_rerank.config import load_config
from os_rerank.contracts import get_contract
from os_rerank.mlcommons import BASE as ML
from os_rerank.provision.render import (
    connector_body,
    index_body,
    model_body,
    model_group_body,
    parse_version,
    pipeline_body,
)
from os_rerank.provision.state import PRIVATE_IP as _PRIVATE
from os_rerank.provision.state import TRUSTED_REGEX as _TRUSTED

RECORDINGS = Path(__file__).resolve().parent / "data" / "recorded"
INDEX, PIPELINE = "os-rerank-recorded", "os_rerank_recorded"
NAMES = {"connector": "os-rerank recorded connector", "model": "os-rerank recorded model",
         "group": "os-rerank-recorded"}
QUERY = "What is the capital of the United States?"
DOCS = ["Washington, D.C. is the capital of the United States.", "Capital punishment has existed for centuries."]

Ctx = dict[str, Any]


@dataclass(frozen=True)
class Step:
    """One request. `path` and bodies may name earlier captures ({connector}, {model}, {group})."""

    name: str
    method: str
    path: str
    body: Callable[[Ctx], Any] | None = None
    capture: tuple[tuple[str, str], ...] = ()  # (ctx key, top-level response key)
    until: Callable[[Any], bool] | None = None  # poll (GET) until true
    settle: bool = False  # let ML Commons' searches catch up first
    keep: Callable[[int, Any], Any] | None = None  # what to compare, instead of the shape


def _config(endpoint_url: str, tmp: Path) -> Any:
    path = tmp / "recorded.yaml"
    path.write_text(json.dumps({
        "opensearch": {"url": "http://unused:9200"},
        "sagemaker": {"region": "us-west-2", "endpoint_url": endpoint_url, "contract": "hf-text-classification"},
        "connector": {"name": NAMES["connector"]}, "model": {"name": NAMES["model"], "group": NAMES["group"]},
        "index": {"name": INDEX}, "pipeline": {"name": PIPELINE},
    }), encoding="utf-8")
    return load_config(path, {})


def _settings(status: int, body: Any) -> Any:
    """Of GET _cluster/settings: which scope holds os-rerank's two settings, and their values' types."""
    out = {}
    for scope in ("persistent", "transient", "defaults"):
        values = (body or {}).get(scope) or {}
        out[scope] = {k: _type(values[k]) for k in (_TRUSTED, _PRIVATE) if k in values}
    return {"status": status, "settings": out}


def _type(value: Any) -> str:
    return "list" if isinstance(value, list) else type(value).__name__


def _plugins(status: int, body: Any) -> Any:
    return {"status": status, "components": sorted({row["component"] for row in body}) if status == 200 else body}


def steps(endpoint_url: str, tmp: Path, version: str = "2.19.1") -> list[Step]:
    """The requests, with os-rerank's own bodies (as rendered for `version`) for a connector to `endpoint_url`."""
    config = _config(endpoint_url, tmp)
    from tests.backends import ACCESS_KEY, SECRET_KEY  # the key pair the test endpoint accepts

    connector = connector_body(config, version=parse_version(version), credential={"access_key": ACCESS_KEY,
                                                                    "secret_key": SECRET_KEY})
    predict = {"query_text": QUERY, "text_docs": DOCS}
    bulk = "".join(json.dumps({"index": {"_index": INDEX, "_id": str(i)}}) + "\n"
                   + json.dumps({"passage_text": d}) + "\n" for i, d in enumerate(DOCS))
    search = {"size": 2, "query": {"match": {"passage_text": QUERY}},
              "ext": {"rerank": {"query_context": {"query_text": QUERY}}}}
    by_name = {"query": {"term": {"name.keyword": NAMES["connector"]}}, "size": 10}
    model_by_name = {"query": {"term": {"name.keyword": NAMES["model"]}}, "size": 10}
    return [
        Step("root", "GET", "/"),
        Step("plugins", "GET", "/_cat/plugins?format=json", keep=_plugins),
        Step("settings", "GET", "/_cluster/settings?include_defaults=true&flat_settings=true", keep=_settings),
        Step("connectors search, fresh cluster", "POST", f"{ML}/connectors/_search", lambda c: by_name),
        Step("models search, fresh cluster", "POST", f"{ML}/models/_search", lambda c: model_by_name),
        Step("put settings", "PUT", "/_cluster/settings",
             lambda c: {"persistent": {_TRUSTED: [r"^http://127\.0\.0\.1:\d+/.*$"], _PRIVATE: True}}),
        Step("settings after", "GET", "/_cluster/settings?include_defaults=true&flat_settings=true", keep=_settings),
        Step("create connector", "POST", f"{ML}/connectors/_create", lambda c: connector,
             capture=(("connector", "connector_id"),)),
        Step("get connector", "GET", f"{ML}/connectors/{{connector}}"),
        Step("register model group", "POST", f"{ML}/model_groups/_register", lambda c: model_group_body(config),
             capture=(("group", "model_group_id"),)),
        Step("get model group", "GET", f"{ML}/model_groups/{{group}}"),
        Step("register model", "POST", f"{ML}/models/_register",
             lambda c: model_body(config, connector_id=c["connector"], model_group_id=c["group"]),
             capture=(("model", "model_id"), ("register_task", "task_id"))),
        Step("get register task", "GET", f"{ML}/tasks/{{register_task}}",
             until=lambda b: b.get("state") == "COMPLETED"),
        Step("get registered model", "GET", f"{ML}/models/{{model}}"),
        Step("deploy model", "POST", f"{ML}/models/{{model}}/_deploy"),
        Step("get deployed model", "GET", f"{ML}/models/{{model}}",
             until=lambda b: b.get("model_state") == "DEPLOYED"),
        Step("search connectors", "POST", f"{ML}/connectors/_search", lambda c: by_name, settle=True),
        Step("search models", "POST", f"{ML}/models/_search", lambda c: model_by_name, settle=True),
        Step("search models by connector", "POST", f"{ML}/models/_search",
             lambda c: {"query": {"term": {"connector_id": c["connector"]}}, "size": 10}, settle=True),
        Step("search model groups", "POST", f"{ML}/model_groups/_search",
             lambda c: {"query": {"term": {"name.keyword": NAMES["group"]}}, "size": 10}, settle=True),
        Step("predict", "POST", f"{ML}/_predict/text_similarity/{{model}}", lambda c: predict),
        Step("create index", "PUT", f"/{INDEX}", lambda c: index_body(config)),
        Step("get index", "GET", f"/{INDEX}"),
        Step("bulk load", "POST", "/_bulk?refresh=true", lambda c: bulk),
        Step("count", "GET", f"/{INDEX}/_count"),
        Step("put pipeline", "PUT", f"/_search/pipeline/{PIPELINE}",
             lambda c: pipeline_body(config, model_id=c["model"])),
        Step("get pipeline", "GET", f"/_search/pipeline/{PIPELINE}"),
        Step("reranked search", "POST", f"/{INDEX}/_search?search_pipeline={PIPELINE}", lambda c: search),
        Step("plain search", "POST", f"/{INDEX}/_search?search_pipeline=_none", lambda c: search),
        Step("update connector while deployed", "PUT", f"{ML}/connectors/{{connector}}",
             lambda c: {"description": "changed"}),
        Step("delete deployed model", "DELETE", f"{ML}/models/{{model}}"),
        Step("delete connector in use", "DELETE", f"{ML}/connectors/{{connector}}"),
        Step("undeploy model", "POST", f"{ML}/models/{{model}}/_undeploy"),
        Step("update connector", "PUT", f"{ML}/connectors/{{connector}}", lambda c: {"description": "changed"}),
        Step("delete model", "DELETE", f"{ML}/models/{{model}}"),
        Step("get deleted model", "GET", f"{ML}/models/{{model}}"),
        Step("delete model again", "DELETE", f"{ML}/models/{{model}}"),
        Step("predict with a deleted model", "POST", f"{ML}/_predict/text_similarity/{{model}}", lambda c: predict),
        Step("delete connector", "DELETE", f"{ML}/connectors/{{connector}}"),
        Step("get deleted connector", "GET", f"{ML}/connectors/{{connector}}"),
        Step("delete model group", "DELETE", f"{ML}/model_groups/{{group}}"),
        Step("delete pipeline", "DELETE", f"/_search/pipeline/{PIPELINE}"),
        Step("get deleted pipeline", "GET", f"/_search/pipeline/{PIPELINE}"),
        Step("delete index", "DELETE", f"/{INDEX}"),
        Step("get deleted index", "GET", f"/{INDEX}"),
    ]


# --- playing them ---------------------------------------------------------------------------------------------------


@dataclass
class Target:
    """A cluster to play the steps on: `client` is an opensearch-py client, `settle` lets searches catch up."""

    client: Any
    settle: Callable[[], None] = lambda: time.sleep(1.5)
    answers: list[dict[str, Any]] = field(default_factory=list)

    def send(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        from opensearchpy.exceptions import TransportError

        split = path.split("?", 1)
        params = dict(p.split("=", 1) for p in split[1].split("&")) if len(split) > 1 else {}
        headers = {"content-type": "application/x-ndjson" if isinstance(body, str) else "application/json"}
        data = body if isinstance(body, str) else (json.dumps(body) if body is not None else None)
        try:
            return 200, self.client.transport.perform_request(method, split[0], params=params, body=data,
                                                              headers=headers)
        except TransportError as exc:
            status = exc.status_code if isinstance(exc.status_code, int) else 0
            info = exc.info
            if isinstance(info, (str, bytes)):
                try:
                    info = json.loads(info)
                except ValueError:
                    info = {"text": str(info)}
            return status, info


def run_steps(target: Target, all_steps: list[Step]) -> list[dict[str, Any]]:
    """Play every step; each answer summarised (see `summarise`)."""
    ctx: Ctx = {}
    out = []
    for step in all_steps:
        if step.settle:
            target.settle()
        path = step.path.format(**ctx)
        body = step.body(ctx) if step.body else None
        status, answer = target.send(step.method, path, body)
        deadline = time.monotonic() + 60
        while step.until is not None and status == 200 and not step.until(answer) and time.monotonic() < deadline:
            time.sleep(0.25)
            status, answer = target.send(step.method, path, body)
        for key, field_name in step.capture:
            if status == 200 and isinstance(answer, dict) and field_name in answer:
                ctx[key] = str(answer[field_name])
        out.append({"step": step.name, "request": f"{step.method} {step.path}",
                    **summarise(step, status, answer, ctx)})
    return out


def summarise(step: Step, status: int, answer: Any, ctx: Ctx) -> dict[str, Any]:
    """What os-rerank depends on in an answer: status, shape, and an error's type and reason (ids named)."""
    if step.keep is not None:
        return {"status": status, "kept": step.keep(status, answer)}
    out: dict[str, Any] = {"status": status, "shape": shape(answer)}
    if status >= 400 and isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        error = answer["error"]
        out["error"] = {"type": error.get("type"), "reason": _named(str(error.get("reason")), ctx)}
    return out


def _named(text: str, ctx: Ctx) -> str:
    for key, value in ctx.items():
        text = text.replace(value, "{" + key + "}")
    return re.sub(r"\b[A-Za-z0-9_-]{20}\b", "<id>", text)


_ID_KEY = re.compile(r"^[A-Za-z0-9_-]{20,22}$")


def shape(value: Any) -> Any:
    """The structure of a JSON value: objects keep their keys, lists the union of their items' shapes."""
    if isinstance(value, dict):  # keys that are ids (nodes, models) are named, not compared
        return {_ID_KEY.sub("<id>", k): shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        items: list[Any] = []
        for item in value:
            s = shape(item)
            if s not in items:
                items.append(s)
        return {"[]": sorted(items, key=lambda s: json.dumps(s, sort_keys=True))}
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return "str"


def differences(want: list[dict[str, Any]], got: list[dict[str, Any]]) -> list[str]:
    """Steps whose summary differs, one line (or a few) each."""
    out = []
    for w, g in zip(want, got, strict=False):
        if w != g:
            out.append(f"{w['step']} ({w['request']}):")
            for key in sorted(set(w) | set(g)):
                if w.get(key) != g.get(key):
                    out.extend(_diff(f"  {key}", w.get(key), g.get(key)))
    if len(want) != len(got):
        out.append(f"{len(want)} steps recorded, {len(got)} played")
    return out


def _diff(path: str, want: Any, got: Any) -> list[str]:
    if isinstance(want, dict) and isinstance(got, dict):
        lines = []
        for key in sorted(set(want) | set(got)):
            if key not in got:
                lines.append(f"{path}.{key}: missing (recorded {json.dumps(want[key])[:120]})")
            elif key not in want:
                lines.append(f"{path}.{key}: not in the recording (got {json.dumps(got[key])[:120]})")
            elif want[key] != got[key]:
                lines.extend(_diff(f"{path}.{key}", want[key], got[key]))
        return lines
    return [f"{path}: recorded {json.dumps(want)[:200]}, got {json.dumps(got)[:200]}"]


def recording_path(version: str) -> Path:
    return RECORDINGS / f"opensearch-{version}.json"


def play_on_fresh_node(version: str, name: str, port: int, tmp: Path) -> list[dict[str, Any]]:
    """Build a fresh real node (os-rerank local, --fresh), play the steps on it, remove it; the summaries."""
    import os

    from opensearchpy import OpenSearch

    from os_rerank.local import node as local
    from os_rerank.server.app import EndpointServer
    from os_rerank.server.lexical import LexicalScorer
    from tests.backends import ENDPOINT_NAME, endpoint_credentials

    home = local.default_home(os.environ)
    ask = local.Ask(name=name, version=version, port=port, secure=False, heap="1g")
    node = local.up(ask, home=home, cache_root=local.default_cache(os.environ), environ=os.environ, fresh=True).node
    endpoint = EndpointServer(get_contract("hf-text-classification"), LexicalScorer(), endpoint_name=ENDPOINT_NAME,
                              credentials=endpoint_credentials()).start()
    try:
        client = OpenSearch(hosts=[node.url], max_retries=0, timeout=60)
        url = f"{endpoint.url}/endpoints/{ENDPOINT_NAME}/invocations"
        return run_steps(Target(client), steps(url, tmp, version))
    finally:
        endpoint.stop()
        local.down(node, purge=True)
