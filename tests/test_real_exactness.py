"""Text reaches the endpoint byte for byte through a real OpenSearch node, for every contract: what no double can
answer.

ML Commons JSON-escapes `query_text` and every `text_docs[i]` before the connector's pre-process script sees them,
then substitutes the script's output into `request_body`; the `rerank` search processor feeds it the hits' `_source`
text. The public tutorial escapes the text a second time and the model then reads `\\"` where the user wrote `"`.
These tests provision each contract with `os-rerank setup` on the real nodes of the session (plain and secured),
send generated text (any Unicode but lone surrogates, which UTF-8 JSON cannot carry; `${...}` placeholders, quotes,
backslashes, control characters, long texts) through `_predict/text_similarity` and through a reranked search, and
compare what the endpoint received (its in-memory record, after `json.loads` of the exact body) with the originals.
Scores must come back in input order: the same scorer is run here on the same pairs.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from os_rerank.cluster import Cluster, connect
from os_rerank.config import load_config
from os_rerank.contracts import CONTRACT_NAMES
from os_rerank.server.app import EndpointServer
from os_rerank.server.lexical import LexicalScorer
from tests.backends import Backend
from tests.support.exactness import DOCUMENTS, QUERY, TEXTS

pytestmark = pytest.mark.scenario  # layer 4 of the suite (README "Tests")

EXAMPLES = 100  # per contract and node
DOCS_INDEX = "os-rerank-exactness-docs"



@dataclass(frozen=True)
class Provisioned:
    contract: str
    model_id: str
    pipeline: str
    cluster: Cluster
    endpoint: EndpointServer


@pytest.fixture(params=CONTRACT_NAMES)
def provisioned(request: pytest.FixtureRequest, real_only_backend: Backend) -> Iterator[Provisioned]:
    """`os-rerank setup` for one contract on a real node, and an index for the search path; teardown after."""
    backend, contract = real_only_backend, str(request.param)
    config = backend.config(sagemaker=backend.endpoint_for(contract))
    code, report, err = backend.run_json("setup", "--config", str(config), "--no-verify")
    assert code == 0, err
    loaded = load_config(config, backend.environ)
    cluster = connect(loaded)
    cluster.request("DELETE", f"/{DOCS_INDEX}", missing_ok=True)
    cluster.request("PUT", f"/{DOCS_INDEX}", body={"mappings": {"properties": {"passage_text": {"type": "text"}}}})
    yield Provisioned(contract, report["ids"]["model"], loaded.pipeline.name, cluster, backend.endpoints[contract])
    cluster.request("DELETE", f"/{DOCS_INDEX}", missing_ok=True)


def _received(endpoint: EndpointServer) -> list[tuple[str, str]]:
    """The (query, document) pairs of every invocation the endpoint received since it was last cleared."""
    pairs: list[tuple[str, str]] = []
    for request in endpoint.received:
        if request.path.endswith("/invocations"):
            pairs.extend(endpoint.contract.parse_request(json.loads(request.body.decode("utf-8"))).pairs)
    endpoint.clear_received()
    return pairs


def _predict(cluster: Cluster, model_id: str, endpoint: EndpointServer, query: str, docs: list[str]) -> list[str]:
    """Problems on the way _predict -> connector -> endpoint, and with the scores that come back."""
    endpoint.clear_received()
    result = cluster.request("POST", f"/_plugins/_ml/_predict/text_similarity/{model_id}",
                             body={"query_text": query, "text_docs": docs})
    pairs = _received(endpoint)
    problems = _differences(pairs, [(query, d) for d in docs], ordered=True)
    got = [float(item["data"][0]) for item in result["inference_results"][0]["output"]]
    want = np.float32(LexicalScorer().score([(query, d) for d in docs])).tolist()
    if len(got) != len(want) or not np.allclose(got, want, rtol=1e-6, atol=1e-7):
        problems.append(f"scores not in input order: got {got}, want {want}")
    return problems


def _search(cluster: Cluster, pipeline: str, endpoint: EndpointServer, query: str, docs: list[str]) -> list[str]:
    """The same through a reranked search: _source text -> rerank processor -> connector -> endpoint."""
    lines = []
    for i, doc in enumerate(docs):
        lines += [json.dumps({"index": {"_index": DOCS_INDEX, "_id": str(i)}}),
                  json.dumps({"passage_text": doc}, ensure_ascii=False)]
    stale = range(len(docs), 2 * len(DOCUMENTS))  # documents an earlier, longer example left
    lines += [json.dumps({"delete": {"_index": DOCS_INDEX, "_id": str(i)}}) for i in stale]
    bulk = cluster.request("POST", "/_bulk", params={"refresh": "true"}, body="\n".join(lines) + "\n",
                           content_type="application/x-ndjson")
    indexed = [i for i in bulk["items"] if "index" in i]
    if any(i["index"].get("error") for i in indexed):
        return [f"indexing refused: {[i['index'].get('error') for i in indexed]}"]
    endpoint.clear_received()
    result = cluster.request(
        "POST", f"/{DOCS_INDEX}/_search", params={"search_pipeline": pipeline},
        body={"size": len(docs), "query": {"match_all": {}},
              "ext": {"rerank": {"query_context": {"query_text": query}}}},
    )
    returned = [h["_source"]["passage_text"] for h in result["hits"]["hits"]]
    problems = [] if Counter(returned) == Counter(docs) else [f"search returned {returned!r} for {docs!r}"]
    # The processor sends hits in first-stage order, which match_all does not promise: compare as multisets.
    return problems + _differences(_received(endpoint), [(query, d) for d in docs], ordered=False)


def _differences(got: list[tuple[str, str]], want: list[tuple[str, str]], *, ordered: bool) -> list[str]:
    if ordered:
        if got == want and all(g[0].encode() == w[0].encode() and g[1].encode() == w[1].encode()
                               for g, w in zip(got, want, strict=True)):
            return []
        return [f"sent {want!r}\n  got {got!r}"]
    missing, extra = Counter(want) - Counter(got), Counter(got) - Counter(want)
    return [f"sent, not received: {p!r}" for p in missing.elements()] + \
           [f"received, never sent: {p!r}" for p in extra.elements()]


def test_text_reaches_the_endpoint_byte_for_byte(provisioned: Provisioned) -> None:
    p = provisioned
    failures: list[str] = []

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(query=TEXTS, docs=st.lists(TEXTS, min_size=1, max_size=4))
    @example(query=QUERY, docs=DOCUMENTS)
    def roundtrip(query: str, docs: list[str]) -> None:
        problems = (_predict(p.cluster, p.model_id, p.endpoint, query, docs)
                    + _search(p.cluster, p.pipeline, p.endpoint, query, docs))
        if problems:
            failures.append(f"{p.contract}: " + "\n  ".join(problems))
        assert not problems, "\n".join(problems)

    roundtrip()
    assert not failures
