"""Texts reach the embedding endpoint byte for byte through a real OpenSearch node, for every embedding contract, and
the vectors come back in input order: through `_predict/text_embedding` (what neural-search's `neural` query and
`text_embedding` processor send: a TextDocsInputDataSet), and through the ingest pipeline of a bulk load.

Each contract is provisioned with `os-rerank setup` (config `embedding`) on the session's real plain node; generated
text (any Unicode but lone surrogates; `${...}` placeholders, quotes, backslashes, control characters, long texts)
goes through, and what the stand-in endpoint (tests/fakes/embedder.py) received is compared with the originals.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from os_rerank.embedding_contracts import EMBEDDING_CONTRACT_NAMES
from tests.backends import Backend, start_real_backend
from tests.fakes.embedder import EmbeddingEndpoint, HashedEmbedder
from tests.fakes.neural import java_is_blank
from tests.support.dense import dense_config
from tests.support.exactness import DOCUMENTS, TEXTS

pytestmark = pytest.mark.scenario  # layer 4 of the suite (README "Tests")

EXAMPLES = 60  # per contract


@dataclass(frozen=True)
class Provisioned:
    contract: str
    model_id: str
    index: str
    url: str  # the node, asked directly: these requests are the test's, not os-rerank's
    endpoint: EmbeddingEndpoint

    def request(self, method: str, path: str, body: Any = None, **params: str) -> Any:
        data = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
        kind = "application/x-ndjson" if isinstance(body, str) else "application/json"
        answer = requests.request(method, self.url + path, params=params, data=data.encode("utf-8"),
                                  headers={"content-type": kind}, timeout=60)
        return answer.json()


@pytest.fixture(params=EMBEDDING_CONTRACT_NAMES)
def provisioned(request: pytest.FixtureRequest, tmp_path: Path, aws_test_env: None,
                embedders: dict[str, EmbeddingEndpoint]) -> Iterator[Provisioned]:  # noqa: F811
    for backend in start_real_backend(request.getfixturevalue("real_clusters"), "real", tmp_path):
        yield from _provision(backend, embedders[str(request.param)])


def _provision(backend: Backend, endpoint: EmbeddingEndpoint) -> Iterator[Provisioned]:
    config = dense_config(backend, endpoint, "exact.yaml")
    backend.run("teardown", "--config", config)
    code, report, err = backend.run_json("setup", "--config", config, "--no-verify")
    assert code == 0, err
    try:
        yield Provisioned(endpoint.contract.name, report["ids"]["embedding_model"], "os-rerank-scenario-dense",
                          backend.url, endpoint)
    finally:
        backend.run("teardown", "--config", config)


def _want(texts: list[str]) -> list[list[float]]:
    return HashedEmbedder().embed(texts)


def _predict(p: Provisioned, texts: list[str]) -> list[str]:
    p.endpoint.clear_received()
    result = p.request("POST", f"/_plugins/_ml/_predict/text_embedding/{p.model_id}", {"text_docs": texts})
    received = p.endpoint.received_texts()
    # Calls of one text each (hf-feature-extraction) go out concurrently: arrival order is not input order, which
    # the vectors below check.
    problems = [] if Counter(received) == Counter(texts) else [f"sent {texts!r}\n  got {received!r}"]
    got = [t["data"] for r in result["inference_results"] for t in r["output"]]
    if len(got) != len(texts) or not np.allclose(got, _want(texts), rtol=0, atol=1e-7):
        problems.append(f"vectors not in input order for {texts!r}")
    return problems


def _ingest(p: Provisioned, texts: list[str]) -> list[str]:
    lines = []
    for i, text in enumerate(texts):
        lines += [json.dumps({"index": {"_index": p.index, "_id": f"x{i}"}}),
                  json.dumps({"passage_text": text}, ensure_ascii=False)]
    p.endpoint.clear_received()
    bulk = p.request("POST", "/_bulk", "\n".join(lines) + "\n", refresh="true")
    # The text_embedding processor refuses a document whose text is blank (2.19.1); the others go through.
    sent = [t for t in texts if not java_is_blank(t)]
    problems = []
    for text, item in zip(texts, bulk["items"], strict=True):
        error = item["index"].get("error")
        refused = {"type": "illegal_argument_exception",
                   "reason": "map type field [passage_text] has empty string value, cannot process it"}
        if (error or None) != (refused if java_is_blank(text) else None):
            problems.append(f"ingest of {text!r}: {item}")
    received = p.endpoint.received_texts()
    if Counter(received) != Counter(sent):
        problems.append(f"ingested {sent!r}\n  endpoint got {received!r}")
    for i, text in enumerate(texts):
        doc = p.request("GET", f"/{p.index}/_doc/x{i}").get("_source") or {}
        if "embedding" in doc and not np.allclose(doc["embedding"], _want([text])[0], rtol=0, atol=1e-7):
            problems.append(f"stored vector of {text!r} is not its embedding")
    p.request("POST", "/_bulk", "".join(json.dumps({"delete": {"_index": p.index, "_id": f"x{i}"}}) + "\n"
                                        for i in range(len(texts))), refresh="true")
    return problems


def test_texts_reach_the_embedding_endpoint_byte_for_byte(provisioned: Provisioned) -> None:
    p = provisioned
    failures: list[str] = []

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(texts=st.lists(TEXTS, min_size=1, max_size=4))
    @example(texts=DOCUMENTS)
    def roundtrip(texts: list[str]) -> None:
        problems = _predict(p, texts) + _ingest(p, texts)
        if problems:
            failures.append(f"{p.contract}: " + "\n  ".join(problems))
        assert not problems, "\n".join(problems)

    roundtrip()
    assert not failures
