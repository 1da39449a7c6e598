"""The double answers like a real node, and the recording of the real node is current (tests/recorded.py).

The recording (tests/data/recorded/opensearch-2.19.1.json, made by scripts/record-real) holds, for each request
os-rerank sends in one setup's life and for the refusals it must understand, the status, the shape and the error
text of a fresh real 2.19.1 node's answer. Where the double differs, the double is wrong; where a fresh real node
differs, the recording is stale (run scripts/record-real).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from opensearchpy import OpenSearch

from os_rerank.contracts import get_contract
from os_rerank.server.app import EndpointServer
from os_rerank.server.lexical import LexicalScorer
from tests.backends import ENDPOINT_NAME, RECORD_NODE, RealClusters, endpoint_credentials
from tests.fakes import OpenSearchDouble
from tests.recorded import Target, differences, play_on_fresh_node, recording_path, run_steps, steps

pytestmark = pytest.mark.unit  # layer 1 of the suite (README "Tests")

VERSION = "2.19.1"


def recorded() -> list[dict[str, object]]:
    return json.loads(recording_path(VERSION).read_text(encoding="utf-8"))


def test_the_double_answers_like_the_recorded_real_node(mlcommons_glue: object, tmp_path: Path) -> None:
    plugins = ["opensearch-job-scheduler", "opensearch-knn", "opensearch-ml", "opensearch-neural-search"]  # local up's
    with OpenSearchDouble(mlcommons_glue, version=VERSION, plugins=plugins) as double, \
            EndpointServer(get_contract("hf-text-classification"), LexicalScorer(), endpoint_name=ENDPOINT_NAME,
                           credentials=endpoint_credentials()) as endpoint:
        target = Target(OpenSearch(hosts=[double.url], max_retries=0, timeout=30), settle=double.settle_searches)
        played = run_steps(target, steps(f"{endpoint.url}/endpoints/{ENDPOINT_NAME}/invocations", tmp_path))
    problems = differences(recorded(), played)
    assert not problems, "the double differs from the real node (fix the double):\n" + "\n".join(problems)


@pytest.mark.parametrize("kind", ["real"])
def test_a_fresh_real_node_still_answers_like_the_recording(kind: str, real_clusters: RealClusters,
                                                           tmp_path: Path) -> None:
    real_clusters.cluster(kind)  # skips, or fails, as the real layer does
    if os.environ.get("OPENSEARCH_URL"):
        pytest.skip("the recording is checked on a fresh local node, not on the cluster OPENSEARCH_URL names")
    played = play_on_fresh_node(VERSION, *RECORD_NODE, tmp_path)
    problems = differences(recorded(), played)
    assert not problems, "the recording is stale (run scripts/record-real):\n" + "\n".join(problems)
