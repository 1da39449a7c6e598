"""The local endpoint through the real boto3 sagemaker-runtime client, for every contract (lexical scorer)."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from os_rerank.contracts import CONTRACT_NAMES, CONTRACTS, get_contract
from os_rerank.server.app import DEFAULT_ENDPOINT_NAME, EndpointServer
from os_rerank.server.lexical import LexicalScorer

pytestmark = pytest.mark.endpoint  # layer 3 of the suite (README "Tests")

AKID, SECRET = "AKIDSERVETEST0000001", "serve-test-secret/+="
QUERY = "What is the capital of the United States?"
SAMPLE = Path(__file__).resolve().parents[1] / "os_rerank" / "data" / "sample_documents.jsonl"
DOCS = [json.loads(line)["passage_text"] for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line]
TRICKY_QUERY = 'q "quoted" \\ back\tslash 한국의 수도 भारत की राजधानी \x00\x1f'
TRICKY_DOCS = [
    "대한민국의 수도는 서울이다.",
    "भारत की राजधानी नई दिल्ली है।",
    'quotes " and \\ backslashes \\" and \u2028 line separators',
    "control \x00\x01\x07\x1b\x7f chars\r\n and emoji 😀👍🏽 𝄞",
    "",
]


def client(url: str, key: str = AKID, secret: str = SECRET, **kw: object) -> object:
    return boto3.client(
        "sagemaker-runtime", endpoint_url=url, region_name="us-west-2", aws_access_key_id=key,
        aws_secret_access_key=secret, config=BotoConfig(retries={"total_max_attempts": 1, "mode": "standard"}), **kw,
    )


def invoke(c: object, body: object, name: str = DEFAULT_ENDPOINT_NAME) -> object:
    raw = body if isinstance(body, (bytes, str)) else json.dumps(body, ensure_ascii=False).encode()
    response = c.invoke_endpoint(EndpointName=name, Body=raw, ContentType="application/json")  # type: ignore[attr-defined]
    return json.loads(response["Body"].read())


@pytest.fixture
def server_for() -> Iterator[object]:
    servers: list[EndpointServer] = []

    def make(contract: str, **kw: object) -> EndpointServer:
        kw.setdefault("credentials", {AKID: SECRET})
        server = EndpointServer(get_contract(contract), LexicalScorer(), **kw).start()  # type: ignore[arg-type]
        servers.append(server)
        return server

    yield make
    for s in servers:
        s.stop()


@pytest.mark.parametrize("name", CONTRACT_NAMES)
@pytest.mark.parametrize(("query", "docs"), [(QUERY, DOCS), (TRICKY_QUERY, TRICKY_DOCS)], ids=["sample", "tricky"])
def test_boto3_scores_come_back_in_input_order(server_for, name: str, query: str, docs: list[str]) -> None:
    contract = CONTRACTS[name]
    server = server_for(name)
    body = contract.build_request(query, docs)
    scores = contract.parse_response(invoke(client(server.url), body), len(docs))
    assert scores == LexicalScorer().score([(query, d) for d in docs])
    # The server saw exactly the bytes boto3 sent, and they decode to the request we built.
    assert json.loads(server.received[-1].body) == body
    assert server.received[-1].path == f"/endpoints/{DEFAULT_ENDPOINT_NAME}/invocations"


def test_sample_query_ranks_washington_first(server_for) -> None:
    contract = CONTRACTS["query-documents-topk"]
    server = server_for(contract.name)
    ranked = invoke(client(server.url), contract.build_request(QUERY, DOCS))
    assert DOCS[ranked[0]["index"]].startswith("Washington, D.C.")


def test_container_routes_and_ping(server_for) -> None:
    server = server_for("tei-rerank", credentials=None)  # as in SageMaker: the platform authenticates
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/ping")
    ping = conn.getresponse()
    assert ping.status == 200
    assert json.loads(ping.read()) == {"status": "Healthy", "scorer": LexicalScorer.name, "contract": "tei-rerank",
                                       "endpoint_name": DEFAULT_ENDPOINT_NAME}
    body = json.dumps(CONTRACTS["tei-rerank"].build_request(QUERY, DOCS))
    for path in ("/invocations", "/rerank"):
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        assert response.status == 200
        assert CONTRACTS["tei-rerank"].parse_response(json.loads(response.read()), 4) == LexicalScorer().score(
            [(QUERY, d) for d in DOCS])
    conn.close()


def test_with_keys_the_container_routes_need_a_signature_too(server_for) -> None:
    server = server_for("tei-rerank")
    body = json.dumps(CONTRACTS["tei-rerank"].build_request(QUERY, DOCS))
    for path in ("/invocations", "/rerank"):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        assert (response.status, json.loads(response.read())) == (403, {"message": "Missing Authentication Token"})
        conn.close()
    assert server.received == []


def test_topk_limits_results(server_for) -> None:
    server = server_for("query-documents-topk")
    ranked = invoke(client(server.url), {"query": QUERY, "documents": DOCS, "topk": 2})
    assert len(ranked) == 2
    assert [r["index"] for r in ranked] == sorted(range(4), key=lambda i: -LexicalScorer().score(
        [(QUERY, d) for d in DOCS])[i])[:2]


def test_unknown_endpoint_is_404(server_for) -> None:
    server = server_for("pairs-scores")
    with pytest.raises(ClientError) as info:
        invoke(client(server.url), {"pairs": [["q", "d"]]}, name="other.endpoint")
    err = info.value.response
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert err["Error"] == {"Code": "ValidationError",
                            "Message": "Endpoint other.endpoint of account 123456789012 not found."}


def test_endpoint_name_with_dots_and_other_region(server_for) -> None:
    server = server_for("pairs-scores", endpoint_name="my.reranker-v2", region="eu-west-1")
    c = boto3.client("sagemaker-runtime", endpoint_url=server.url, region_name="eu-west-1",
                     aws_access_key_id=AKID, aws_secret_access_key=SECRET)
    assert invoke(c, {"pairs": [["q", "q"]]}, name="my.reranker-v2")["scores"][0] > 0


def test_model_errors_are_424_model_error(server_for) -> None:
    server = server_for("pairs-scores")
    with pytest.raises(ClientError) as info:
        invoke(client(server.url), {"pairs": []})
    err = info.value.response
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert err["Error"]["Code"] == "ModelError"
    assert err["OriginalStatusCode"] == 400
    assert json.loads(err["OriginalMessage"]) == {"message": "pairs-scores: pairs: no documents to score"}
    assert err["Error"]["Message"].startswith('Received client error (400) from primary with message "{')


def test_fail_next_injects_throttling_then_recovers(server_for) -> None:
    server = server_for("pairs-scores")
    server.fail_next(400, {"message": "Rate exceeded"}, error_type="ThrottlingException", count=2)
    c = client(server.url)
    for _ in range(2):
        with pytest.raises(ClientError) as info:
            invoke(c, {"pairs": [["q", "d"]]})
        assert info.value.response["Error"] == {"Code": "ThrottlingException", "Message": "Rate exceeded"}
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "scores" in invoke(c, {"pairs": [["q", "d"]]})
    # botocore's own retries see the fault once and then succeed.
    server.fail_next(503, error_type="ServiceUnavailable")
    retrying = boto3.client("sagemaker-runtime", endpoint_url=server.url, region_name="us-west-2",
                            aws_access_key_id=AKID, aws_secret_access_key=SECRET,
                            config=BotoConfig(retries={"total_max_attempts": 3, "mode": "standard"}))
    assert "scores" in invoke(retrying, {"pairs": [["q", "d"]]})
    assert len(server.received) == 5


def test_record_file_holds_each_body(server_for, tmp_path: Path) -> None:
    record = tmp_path / "received.jsonl"
    server = server_for("hf-text-classification", record_path=record, credentials=None)
    body = CONTRACTS["hf-text-classification"].build_request(TRICKY_QUERY, TRICKY_DOCS)
    invoke(client(server.url), body)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("POST", "/invocations", body=b"\xff\xfe not utf-8", headers={"Content-Type": "application/json"})
    assert conn.getresponse().status == 400
    conn.close()
    lines = [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines()]
    assert [line["path"] for line in lines] == [f"/endpoints/{DEFAULT_ENDPOINT_NAME}/invocations", "/invocations"]
    assert json.loads(lines[0]["body"]) == body
    assert lines[0]["body"].encode() == server.received[0].body
    assert lines[1]["body_base64"] == "//4gbm90IHV0Zi04"


def test_concurrent_clients_get_their_own_answers(server_for) -> None:
    contract = CONTRACTS["pairs-scores"]
    server = server_for(contract.name)
    errors: list[str] = []

    def worker(n: int) -> None:
        c = client(server.url)
        for i in range(50):
            docs = [f"document {n} {i} capital", f"another text {i}", DOCS[(n + i) % 4]]
            query = f"capital {n} {i}"
            try:
                got = contract.parse_response(invoke(c, contract.build_request(query, docs)), 3)
                if got != LexicalScorer().score([(query, d) for d in docs]):
                    errors.append(f"client {n} request {i}: wrong scores {got}")
            except Exception as exc:  # collected so the assertion shows every failure
                errors.append(f"client {n} request {i}: {exc!r}")

    clients = [boto3.session.Session() for _ in range(8)]  # warm botocore's loaders before the threads start
    del clients
    client(server.url)
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert errors == []
    assert len(server.received) == 400
