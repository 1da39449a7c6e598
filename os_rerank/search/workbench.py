"""Export an eval set (queries, judgments) to the Search Relevance Workbench (OpenSearch 3.1+), shown in Dashboards.

The Workbench's REST API, as read in opensearch-project/search-relevance (3.1.0.0: `common/PluginConstants.java`,
`rest/RestPutQuerySetAction.java`, `rest/RestPutJudgmentAction.java`, `judgments/ImportJudgmentsProcessor.java`,
`utils/TextValidationUtil.java`, `settings/SearchRelevanceSettings.java`):
- `PUT /_plugins/_search_relevance/query_sets` `{name, description, sampling: "manual", querySetQueries:
  [{queryText}]}` answers `{query_set_id, query_set_result}`;
- `PUT /_plugins/_search_relevance/judgments` `{name, description, type: "IMPORT_JUDGMENT", judgmentRatings:
  [{query, ratings: [{docId, rating}]}]}` answers `{judgment_id}`; a rating must be a JSON *string* holding a number
  (the processor casts it to String, then parses a float), and judgments are keyed by query text, not id;
- `GET` on either path lists them (a search response; `_source` has `name`, `description`), `DELETE .../<id>`;
- a name or description must be 1 to 2,000 characters without `"`, `\\`, `<` or `>` (400 "Invalid name: ...");
- every call answers 403 "Search Relevance Workbench is disabled" until the cluster setting
  `plugins.search_relevance.workbench_enabled` is true (default false); a query set holds at most
  `plugins.search_relevance.query_set.maximum` queries (default 1000).
Real nodes here are 2.19.1, without the Workbench: this is tested on the double only, which follows those sources.

Idempotent by name: both are named `name`, and the description carries a hash of the content, so a second export
of the same set sends nothing and a changed one replaces only what changed (delete, then create). A query set or
judgment list with that name that os-rerank did not write (another description) is refused, never replaced.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..cluster import Cluster
from ..errors import ClusterError, UsageError
from ..provision.render import Version, format_version

BASE = "/_plugins/_search_relevance"
QUERY_SETS = f"{BASE}/query_sets"
JUDGMENTS = f"{BASE}/judgments"
PLUGIN = "opensearch-search-relevance"
SINCE: Version = (3, 1, 0)
ENABLED_SETTING = "plugins.search_relevance.workbench_enabled"
MAX_QUERIES = 1000  # plugins.search_relevance.query_set.maximum, default
DESCRIPTION_PREFIX = "os-rerank eval set"
_FORBIDDEN = set('"\\<>')


@dataclass(frozen=True)
class Item:
    """One Workbench object to export: its kind, path, body, and what the cluster holds under its name."""

    kind: str  # query set | judgments
    path: str
    body: dict[str, Any]
    existing: tuple[str, ...] = ()  # ids of ours under this name, with other content
    same: str | None = None  # id of ours with this very content

    @property
    def action(self) -> str:
        return "no change" if self.same else ("replace" if self.existing else "create")


@dataclass(frozen=True)
class Export:
    name: str
    items: tuple[Item, ...]
    dry_run: bool
    writes: int = 0
    ids: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dry_run": self.dry_run, "writes_sent": self.writes, "ids": list(self.ids),
                "items": [{"kind": i.kind, "action": i.action, "path": i.path, "body": i.body,
                           "replaces": list(i.existing)} for i in self.items]}

    def lines(self) -> list[str]:
        out = []
        for item in self.items:
            if item.same:
                out.append(f"= {item.kind} {self.name}: exists with this content (id {item.same})")
                continue
            gone = f" (replaces {', '.join(item.existing)})" if item.existing else ""
            out.append(f"{'+' if not item.existing else '-/+'} {item.kind} {self.name}{gone}")
            if self.dry_run:
                out += [f"PUT {item.path}", json.dumps(item.body, ensure_ascii=False, indent=2)]
        if not any(i.action != "no change" for i in self.items):
            out.append("No changes.")
        elif self.dry_run:
            out.append("(dry run: nothing sent)")
        else:
            out.append(f"Exported: {self.writes} write requests; ids {', '.join(self.ids)}.")
        return out


def check_name(name: str) -> str:
    """`name` when the Workbench accepts it (TextValidationUtil); UsageError otherwise."""
    if not name or len(name) > 2000 or _FORBIDDEN & set(name):
        raise UsageError(f"--name {name!r}: the Workbench takes 1 to 2000 characters without \" \\ < >")
    return name


def export_bodies(name: str, queries: Sequence[Any], qrels: Mapping[str, Mapping[str, int]]
                  ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(query set body, judgments body) for the eval set; pure. Each description carries its content's hash."""
    if len(queries) > MAX_QUERIES:
        raise UsageError(f"{len(queries)} queries: a Workbench query set holds at most {MAX_QUERIES} "
                         "(plugins.search_relevance.query_set.maximum)")
    query_set = {"sampling": "manual", "querySetQueries": [{"queryText": q.text} for q in queries]}
    texts = {q.id: q.text for q in queries}
    ratings = [{"query": texts[qid], "ratings": [{"docId": doc, "rating": str(rel)} for doc, rel in docs.items()]}
               for qid, docs in qrels.items() if qid in texts]
    judgments = {"type": "IMPORT_JUDGMENT", "judgmentRatings": ratings}
    out = []
    for body in (query_set, judgments):
        digest = hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()
        out.append({"name": name, "description": f"{DESCRIPTION_PREFIX} {digest[:16]}", **body})
    return out[0], out[1]


def _listed(cluster: Cluster, path: str) -> list[tuple[str, dict[str, Any]]]:
    result = cluster.request("GET", path, missing_ok=True) or {}
    hits = ((result.get("hits") or {}).get("hits")) or []
    return [(str(h.get("_id")), dict(h.get("_source") or {})) for h in hits if isinstance(h, dict)]


def _item(cluster: Cluster, kind: str, path: str, body: dict[str, Any]) -> Item:
    mine, same = [], None
    for found_id, source in _listed(cluster, path):
        if source.get("name") != body["name"]:
            continue
        description = str(source.get("description") or "")
        if not description.startswith(DESCRIPTION_PREFIX):
            raise ClusterError(f"a Workbench {kind} named {body['name']!r} exists (id {found_id}) that os-rerank did "
                               "not write", fix="pass another --name, or delete it in the Workbench")
        if description == body["description"] and same is None:
            same = found_id
        else:
            mine.append(found_id)
    return Item(kind, path, body, tuple(mine), same)


def plan_export(cluster: Cluster, info: Any, name: str, queries: Sequence[Any],
                qrels: Mapping[str, Mapping[str, int]], *, dry_run: bool = False) -> Export:
    """What the export would send, read from the cluster (GETs only); ClusterError where there is no Workbench."""
    if info.version < SINCE or PLUGIN not in info.plugins:
        raise ClusterError(
            f"the Search Relevance Workbench needs OpenSearch {format_version(SINCE)} or newer with the "
            f"{PLUGIN} plugin; this cluster is {info.version_text}"
            + ("" if PLUGIN in info.plugins else f" without {PLUGIN}"),
            fix="export from a 3.1+ cluster that has the plugin (`eval` works here without it)")
    query_set, judgments = export_bodies(name, queries, qrels)
    try:
        items = (_item(cluster, "query set", QUERY_SETS, query_set), _item(cluster, "judgments", JUDGMENTS, judgments))
    except ClusterError as exc:
        if exc.status == 403:
            raise ClusterError(f"the Search Relevance Workbench is disabled: {exc.message}",
                               fix=f"set the cluster setting {ENABLED_SETTING}: true") from None
        raise
    return Export(name, items, dry_run)


def apply_export(cluster: Cluster, export: Export) -> Export:
    """Delete what is replaced, create what is new; the Export with its write count and the ids created."""
    writes, ids = 0, []
    for item in export.items:
        if item.same:
            ids.append(item.same)
            continue
        for old in item.existing:
            cluster.request("DELETE", f"{item.path}/{old}", missing_ok=True)
            writes += 1
        response = cluster.request("PUT", item.path, body=item.body) or {}
        writes += 1
        ids.append(str(response.get("query_set_id") or response.get("judgment_id") or "?"))
    return Export(export.name, export.items, export.dry_run, writes, tuple(ids))
