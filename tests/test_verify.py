"""verify's pieces: float32 comparison with a stated tolerance, order, probes, endpoint error mapping."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

import os_rerank.cluster
from os_rerank.endpoint import endpoint_error, score_documents
from os_rerank.errors import ClusterError, EndpointError, VerifyError
from os_rerank.provision.verify import PROBES, check, compare_scores, float32, probe_documents, verify
from tests.support.plans import make_config
from tests.support.scripted import Seq, cluster_for, error

pytestmark = pytest.mark.unit  # layer 1 of the suite (README "Tests")


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os_rerank.cluster, "RETRY_BASE_SECONDS", 0.001)


def test_float32_rounding() -> None:
    assert float32(0.1) == 0.10000000149011612
    assert float32(1e-9) != 1e-9 and abs(float32(1e-9) - 1e-9) < 1e-15


def test_compare_scores_count_tolerance_and_order() -> None:
    direct = [0.1, 0.9, 0.5]
    assert compare_scores([float32(s) for s in direct], direct, 1e-4) == ([], 0.0)
    diffs, worst = compare_scores([0.1, 0.9], direct, 1e-4)
    assert diffs == ["count: 2 scores through OpenSearch, 3 from the endpoint"]
    diffs, worst = compare_scores([0.1, 0.9, 0.6], direct, 1e-4)
    assert diffs[0].startswith("document 2: 0.6 through OpenSearch vs 0.5 direct (|diff| 0.1 > 0.0001)")
    diffs, _ = compare_scores([0.9, 0.1, 0.5], direct, 1e-4)
    assert len(diffs) == 3
    assert diffs[-1] == "order: documents 0 and 1 are ranked the other way round through OpenSearch"
    # Ties within the tolerance may come back in either order.
    assert compare_scores([0.50001, 0.5], [0.5, 0.50001], 1e-4)[0] == []


def test_probes_cover_the_hard_text() -> None:
    docs = probe_documents(make_config())
    assert docs[:4][2].startswith("Washington, D.C.")
    text = "".join(PROBES)
    for piece in ('"', "\n", "\r\n", "\t", "\\", "'", "<", "서울", "नई दिल्ली", "$", "${parameters.body}"):
        assert piece in text


PREDICT = {"inference_results": [{"output": [
    {"name": "similarity", "data_type": "FLOAT32", "shape": [1], "data": [float32(0.25 * i)]} for i in range(12)],
    "status_code": 200}]}
SEARCH = {"hits": {"hits": [{"_id": "seed-3", "_source": {"passage_text": "Washington, D.C. is the capital"}}]}}


def scorer(config: Any, query: str, docs: Any) -> list[float]:
    return [0.25 * i for i in range(len(docs))]


def test_verify_passes_and_sends_ext_rerank_always() -> None:
    cluster, transport, _ = cluster_for([("POST", r"/_predict/text_similarity/m1$", PREDICT),
                                         ("POST", r"^/my-test-data/_search$", SEARCH)])
    report = verify(cluster, make_config(), "m1", scorer=scorer)
    assert report.passed and report.top_hit == "Washington, D.C. is the capital"
    predict = json.loads(transport.sent[0][2] or "")
    assert predict["query_text"] == "What is the capital of the United States?" and len(predict["text_docs"]) == 12
    search = json.loads(transport.sent[1][2] or "")
    assert search["ext"] == {"rerank": {"query_context": {"query_text": "What is the capital of the United States?"}}}
    check(report)
    assert report.lines()[-1] == "verify: ok"


def test_verify_failure_lists_every_difference() -> None:
    wrong = {"hits": {"hits": [{"_id": "seed-1", "_source": {"passage_text": "Carson City"}}]}}
    cluster, _, _ = cluster_for([("POST", r"/_predict/", PREDICT), ("POST", r"/_search$", wrong)])
    report = verify(cluster, make_config(), "m1", scorer=lambda c, q, d: [0.0] * len(d))
    with pytest.raises(VerifyError) as err:
        check(report)
    assert err.value.exit_code == 6
    assert any(d.startswith("document 1: ") for d in err.value.differences)
    assert err.value.differences[-1] == ("search: top hit through pipeline rerank_pipeline_sagemaker is "
                                         "'Carson City', expected it to contain 'Washington, D.C.'")


def test_a_failing_predict_is_a_difference_after_retries_but_no_answer_is_a_cluster_error() -> None:
    cluster, transport, _ = cluster_for([("POST", r"/_predict/", error(500, "Error from remote service: boom")),
                                         ("POST", r"/_search$", SEARCH)])
    report = verify(cluster, make_config(), "m1", scorer=scorer)
    assert report.differences[0].startswith("predict through OpenSearch failed: POST /_plugins/_ml/_predict/")
    assert [p for _, p, _ in transport.sent].count("/_plugins/_ml/_predict/text_similarity/m1") == 3

    cluster, _, _ = cluster_for([("POST", r"/_predict/", Seq([error(500, "Error from remote service: x"), PREDICT])),
                                 ("POST", r"/_search$", SEARCH)])
    report = verify(cluster, make_config(), "m1", scorer=scorer)
    assert report.passed and report.retries == 1

    from opensearchpy.exceptions import ConnectionError as OsConnectionError
    cluster, _, _ = cluster_for([("POST", r"/_predict/", OsConnectionError("N/A", "refused", Exception()))])
    with pytest.raises(ClusterError):
        verify(cluster, make_config(), "m1", scorer=scorer)


def client_error(code: str, message: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       "InvokeEndpoint")


@pytest.mark.parametrize(("code", "message", "status", "fix_word"), [
    ("ThrottlingException", "Rate exceeded", 400, "throttling"),
    ("ModelError", "Received client error (400) from primary", 424, "CloudWatch"),
    ("ValidationError", "Endpoint x of account 1 not found.", 400, "endpoint_name"),
    ("ValidationError", "bad body", 400, "invalid"),
    ("InvalidSignatureException", "signature", 403, "credentials"),
    ("ServiceUnavailable", "down", 503, "5xx"),
])
def test_endpoint_errors_carry_a_fix(code: str, message: str, status: int, fix_word: str) -> None:
    err = endpoint_error(client_error(code, message, status), "x")
    assert err.message == f"endpoint 'x': {code}: {message}"
    assert fix_word in (err.fix or "")


class Client:
    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.sent: list[dict[str, Any]] = []

    def invoke_endpoint(self, **kwargs: Any) -> Any:
        self.sent.append(kwargs)
        if isinstance(self.answer, Exception):
            raise self.answer
        return {"Body": io.BytesIO(self.answer)}


def test_score_documents_speaks_the_contract_in_utf8() -> None:
    client = Client(json.dumps([{"label": "LABEL_0", "score": 0.5}, {"label": "LABEL_0", "score": 0.25}]).encode())
    assert score_documents(make_config(), "q", ["서울", 'say "hi"'], client=client) == [0.5, 0.25]
    body = client.sent[0]["Body"]
    assert body == json.dumps({"inputs": [{"text": "q", "text_pair": "서울"}, {"text": "q", "text_pair": 'say "hi"'}]},
                              ensure_ascii=False).encode("utf-8")
    assert client.sent[0]["EndpointName"] == "os-rerank-cross-encoder"


@pytest.mark.parametrize(("answer", "start"), [
    (b'{"scores": [0.1, 0.2]}', "endpoint 'os-rerank-cross-encoder' does not answer in the hf-text-classification"),
    (b"<html>", "endpoint 'os-rerank-cross-encoder' answered with something that is not JSON"),
    (NoCredentialsError(), "no AWS credentials to call endpoint"),
    (EndpointConnectionError(endpoint_url="http://x"), "cannot reach endpoint"),
])
def test_score_documents_failures(answer: Any, start: str) -> None:
    with pytest.raises(EndpointError) as err:
        score_documents(make_config(), "q", ["a", "b"], client=Client(answer))
    assert err.value.message.startswith(start) and err.value.fix


def test_report_lines_say_what_came_back() -> None:
    from os_rerank.provision.verify import VerifyReport

    ok = VerifyReport("m", "q", ["a", "b"], [0.5, 0.25], [0.5, 0.25], 1e-4, 0.0, top_hit="Washington, D.C. is",
                      expected_top="Washington")
    assert ok.lines() == [
        "predict roundtrip: 2 scores through OpenSearch and from the endpoint; max |difference| 0 (tolerance "
        "0.0001, direct scores rounded to float32)",
        "reranked search: top hit 'Washington, D.C. is' (expected to contain 'Washington')",
        "verify: ok",
    ]
    failed = VerifyReport("m", "q", ["a", "b"], [], [0.5, 0.25], 1e-4, 0.0, expected_top="Washington",
                          differences=["predict through OpenSearch failed: ..."])
    assert failed.lines() == [
        "predict roundtrip: 2 documents sent; 0 scores came back through OpenSearch, 2 from the endpoint",
        "reranked search: top hit none (the search failed) (expected to contain 'Washington')",
        "verify: FAILED",
    ]
