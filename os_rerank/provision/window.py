"""Windowed reranking in the pipeline itself: rerank the top K, return the top N, for every caller.

The rerank processor reorders only the page a search asks for (search/query.py). With `pipeline.oversample: F` the
pipeline gains two processors of OpenSearch's search-pipeline-common module (2.12+):
- `oversample` (request): the shards are asked for ceil(size × F) hits; the size asked for is kept in the
  pipeline's context (`original_size`);
- `truncate_hits` (response), after `rerank`: with no `target_size`, it cuts the reranked hits back to that size.
(OpenSearch modules/search-pipeline-common: OversampleRequestProcessor.java, TruncateHitsResponseProcessor.java.)

search-pipeline-common is a module of the full distribution. The nodes `os-rerank local` builds from the minimal
distribution do not have it, and Maven Central serves no search-pipeline-common 2.19.1 to add (2.19.0 and 2.19.2
are there; a module must match the node's version exactly): on them `PUT _search/pipeline` answers 400 "Invalid
processor type oversample". So before a pipeline with them is written, `GET /_nodes/search_pipelines` (the
processor types each node offers) is read, and a cluster where any node lacks them is a plan error. GETs only.
"""

from __future__ import annotations

from typing import Any

from ..cluster import Cluster
from ..config import Config
from ..errors import ClusterError

REQUEST_PROCESSOR = "oversample"
RESPONSE_PROCESSOR = "truncate_hits"
MODULE = "search-pipeline-common"


def available_processors(cluster: Cluster) -> dict[str, frozenset[str]]:
    """Node name -> the search-pipeline processor types it offers (request and response together)."""
    result = cluster.request("GET", "/_nodes/search_pipelines") or {}
    out: dict[str, frozenset[str]] = {}
    for node_id, node in (result.get("nodes") or {}).items():
        pipelines: dict[str, Any] = node.get("search_pipelines") or {}
        types = {str(p.get("type")) for key in ("request_processors", "response_processors")
                 for p in pipelines.get(key) or [] if isinstance(p, dict)}
        out[str(node.get("name") or node_id)] = frozenset(types)
    return out


def missing_window_processors(available: dict[str, frozenset[str]]) -> dict[str, list[str]]:
    """Node name -> the windowing processors it lacks (empty when every node has both)."""
    want = (REQUEST_PROCESSOR, RESPONSE_PROCESSOR)
    return {node: [p for p in want if p not in types] for node, types in sorted(available.items())
            if any(p not in types for p in want)}


def check_window(cluster: Cluster, config: Config) -> None:
    """Nothing when the pipeline needs no windowing processors or every node has them; ClusterError otherwise."""
    if config.pipeline.oversample is None:
        return
    missing = missing_window_processors(available_processors(cluster))
    if not missing:
        return
    nodes = "; ".join(f"{node} lacks {', '.join(procs)}" for node, procs in missing.items())
    raise ClusterError(
        f"pipeline.oversample ({config.pipeline.oversample:g}) needs the search processors {REQUEST_PROCESSOR} and "
        f"{RESPONSE_PROCESSOR} (OpenSearch module {MODULE}): {nodes}",
        fix=f"remove pipeline.oversample from {config.source.name} (then the pipeline reranks the page a search asks "
        f"for; `os-rerank search --window` and `eval --depths` still choose that page), or run a distribution that "
        f"includes {MODULE}")
