"""Text reaches the endpoint byte for byte through a real OpenSearch: what only a real cluster can answer.

ML Commons JSON-escapes `query_text` and every `text_docs[i]` before the connector's pre-process script sees them,
then substitutes the script's output into `request_body`, and the `rerank` search processor feeds it the documents'
`_source` text. The public tutorial escapes the text a second time, and the model then reads `\\"` where the user
wrote `"`. No test double can say what a given ML Commons version really does, so this test asks one: it provisions
the connector with `os-rerank setup` (in-process), sends adversarial text through the predict API and through a
reranked search, and compares what the endpoint received, after `json.loads` of the exact body, with the original
strings.

How the body is seen: the compose stack's endpoint runs `os-rerank serve --record FILE` (docker-compose.yml), which
appends every body it receives as a JSON line; this test reads that file with `docker compose exec` (set
`OS_RERANK_RECORD_CMD` to read it another way). The alternative, an endpoint in this process reached from the
OpenSearch container through host.docker.internal, was rejected: it depends on the host's firewall letting the
docker bridge in, which is often not the case on Linux desktops; the compose network path is the one the scenario
suite already proves.

Run with scripts/integration, which starts the stack and sets OPENSEARCH_URL, OS_RERANK_ENDPOINT_URL,
OS_RERANK_LOCAL_ENDPOINT_URL and the endpoint's dummy AWS keys.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shlex
import subprocess
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from os_rerank.cli import main
from os_rerank.cluster import Cluster, connect
from os_rerank.config import load_config
from os_rerank.contracts import ContractError, get_contract

REPO = Path(__file__).resolve().parent.parent
RECORD_FILE = "/tmp/os-rerank-received.jsonl"  # docker-compose.yml: endpoint --record
DEFAULT_RECORD_CMD = f"docker compose exec -T endpoint cat {RECORD_FILE}"
NAME = "os-rerank-bytes-test"
DOCS_INDEX = "os-rerank-bytes-docs"

# Every document is one kind of trouble, so a failure names it.
DOCUMENTS = [
    'double quotes: she said "hello" and "bye"',
    "backslashes: C:\\Users\\new\\table, a lone \\ and the two characters \\n and \\u0041",
    "TAB:\there. LF:\nthere. CRLF:\r\nend",
    "apostrophes: it's O'Reilly's",
    "markup: <b>bold</b> & a < b > c &amp; &lt;",
    'Korean: 미국의 수도는 워싱턴 D.C.입니다. "따옴표"와 \\ 백슬래시',
    "Hindi: भारत की राजधानी नई दिल्ली है। हिन्दी",
    "dollars: $5, $$, $HOME, ${parameters.body} and ${parameters.inputs}",
    '{"inputs": [{"text": "a JSON document", "text_pair": "\\""}]}',
    "beyond: a control char \u0001, an emoji 🙂, a line separator \u2028 and \u00e9 vs e\u0301",
]
QUERY = "What is \"the\" capital? It's <Washington> & 서울 \\ दिल्ली\t${parameters.body}"


@dataclass(frozen=True)
class Stack:
    cluster: Cluster
    contract: str
    model_id: str
    pipeline: str


def _cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), environ=dict(os.environ), stdout=out, stderr=out)
    return code, out.getvalue()


def _write_config(path: Path) -> Path:
    """config.example.yaml with this test's own names and the stack's endpoint URLs."""
    data = yaml.safe_load((REPO / "config.example.yaml").read_text(encoding="utf-8"))
    sm = data["sagemaker"]
    url = os.environ.get("OS_RERANK_ENDPOINT_URL") or sm["endpoint_url"]
    if not url.rstrip("/").endswith("/invocations"):  # a base URL, as tests/scenarios/conftest.py also accepts
        url = f"{url.rstrip('/')}/endpoints/{sm['endpoint_name']}/invocations"
    sm["endpoint_url"] = url
    sm["local_endpoint_url"] = os.environ.get("OS_RERANK_LOCAL_ENDPOINT_URL", sm.get("local_endpoint_url"))
    data["connector"]["name"] = NAME
    data["model"]["name"] = NAME
    data["model"]["group"] = NAME
    data["index"]["name"] = NAME
    data["pipeline"]["name"] = NAME
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@contextmanager
def _provisioned(config_path: Path) -> Iterator[Stack]:
    """`os-rerank setup` with this test's config, and `teardown` afterwards (also when the test fails)."""
    code, out = _cli("setup", "--config", str(config_path))
    assert code == 0, f"os-rerank setup failed ({code}):\n{out}"
    config = load_config(config_path, dict(os.environ))
    cluster = connect(config)
    try:
        got = cluster.request("GET", f"/_search/pipeline/{NAME}")
        model_id = got[NAME]["response_processors"][0]["rerank"]["ml_opensearch"]["model_id"]
        yield Stack(cluster, config.sagemaker.contract, model_id, NAME)
    finally:
        cluster.request("DELETE", f"/{DOCS_INDEX}", missing_ok=True)
        code, out = _cli("teardown", "--config", str(config_path))
        assert code == 0, f"os-rerank teardown failed ({code}):\n{out}"


def _record_cmd() -> list[str]:
    return shlex.split(os.environ.get("OS_RERANK_RECORD_CMD") or DEFAULT_RECORD_CMD)


def _record_lines(argv: list[str]) -> list[dict[str, Any]]:
    try:
        done = subprocess.run(argv, cwd=REPO, capture_output=True, timeout=60, check=False)
    except FileNotFoundError:
        pytest.fail(f"cannot read the endpoint's record: {argv[0]} not found (set OS_RERANK_RECORD_CMD)")
    if done.returncode != 0:
        reason = done.stderr.decode(errors="replace").strip()
        pytest.fail(f"cannot read the endpoint's record with {shlex.join(argv)}: {reason}")
    # The server writes one JSON object per line and escapes every other Unicode line break: split on \n only.
    return [json.loads(line) for line in done.stdout.decode("utf-8").split("\n") if line.strip()]


def _received(nonce: str, record_cmd: list[str] | None = None) -> list[str]:
    """The exact body of every invocation the endpoint received whose raw text contains `nonce`."""
    bodies = []
    for rec in _record_lines(record_cmd or _record_cmd()):
        body = rec["body"] if "body" in rec else base64.b64decode(rec["body_base64"]).decode("utf-8")
        if rec.get("path", "").endswith("/invocations") and nonce in body:
            bodies.append(body)
    return bodies


def _pairs(contract: str, body: str) -> list[tuple[str, str]]:
    try:
        return list(get_contract(contract).parse_request(json.loads(body)).pairs)
    except (ValueError, ContractError) as exc:
        pytest.fail(f"the endpoint received a body that is not a {contract} request ({exc}):\n{body}")


def _differences(got: list[str], want: list[str]) -> list[str]:
    lines = [f"  sent {w!r}\n  got  {g!r}" for g, w in zip(got, want, strict=False) if g.encode() != w.encode()]
    if len(got) != len(want):
        lines.append(f"  {len(want)} texts sent, {len(got)} received")
    return lines


def _predict_problems(stack: Stack) -> list[str]:
    """What went wrong on the way POST _predict/text_similarity -> connector -> endpoint (nothing: [])."""
    nonce = uuid.uuid4().hex
    query = f"{QUERY} [{nonce}]"
    result = stack.cluster.request(
        "POST", f"/_plugins/_ml/_predict/text_similarity/{stack.model_id}",
        body={"query_text": query, "text_docs": DOCUMENTS},
    )
    output = result["inference_results"][0]["output"]
    assert len(output) == len(DOCUMENTS), f"predict returned {len(output)} scores for {len(DOCUMENTS)} documents"
    bodies = _received(nonce)
    assert len(bodies) == 1, f"expected one endpoint call carrying the predict query, got {len(bodies)}"
    pairs = _pairs(stack.contract, bodies[0])
    problems = _differences([q for q, _ in pairs], [query] * len(pairs))
    return problems + _differences([d for _, d in pairs], DOCUMENTS)


def _search_problems(stack: Stack) -> list[str]:
    """The same through a reranked search: _source text -> rerank processor -> connector -> endpoint."""
    cluster = stack.cluster
    cluster.request("DELETE", f"/{DOCS_INDEX}", missing_ok=True)
    cluster.request("PUT", f"/{DOCS_INDEX}", body={"mappings": {"properties": {"passage_text": {"type": "text"}}}})
    for i, doc in enumerate(DOCUMENTS):
        cluster.request("PUT", f"/{DOCS_INDEX}/_doc/{i}", body={"passage_text": doc})
    cluster.request("POST", f"/{DOCS_INDEX}/_refresh")
    nonce = uuid.uuid4().hex
    query = f"{QUERY} [{nonce}]"
    result = cluster.request(
        "POST", f"/{DOCS_INDEX}/_search", params={"search_pipeline": stack.pipeline},
        body={"size": len(DOCUMENTS), "query": {"match_all": {}},
              "ext": {"rerank": {"query_context": {"query_text": query}}}},
    )
    hits = result["hits"]["hits"]
    assert Counter(h["_source"]["passage_text"] for h in hits) == Counter(DOCUMENTS)
    bodies = _received(nonce)
    assert len(bodies) == 1, f"expected one endpoint call carrying the search query, got {len(bodies)}"
    pairs = _pairs(stack.contract, bodies[0])
    problems = _differences([q for q, _ in pairs], [query] * len(pairs))
    # The processor sends the hits in first-stage order, which match_all does not promise: compare as multisets.
    received = Counter(d for _, d in pairs)
    problems += [f"  sent, not received: {d!r}" for d in (Counter(DOCUMENTS) - received).elements()]
    return problems + [f"  received, never sent: {d!r}" for d in (received - Counter(DOCUMENTS)).elements()]


def test_text_reaches_the_endpoint_byte_for_byte(tmp_path: Path) -> None:
    if not os.environ.get("OPENSEARCH_URL"):
        pytest.skip("OPENSEARCH_URL not set (needs a real OpenSearch: scripts/integration)")
    with _provisioned(_write_config(tmp_path / "config.yaml")) as stack:
        predict = _predict_problems(stack)
        search = _search_problems(stack)
    report = []
    if predict:
        report += ["through _predict/text_similarity:", *predict]
    if search:
        report += ["through the rerank search pipeline:", *search]
    assert not report, "the endpoint did not receive the original text\n" + "\n".join(report)


def test_record_reader_reads_the_endpoints_own_record(tmp_path: Path) -> None:
    """Runs anywhere: the reader above understands what `os-rerank serve --record` writes, for every contract."""
    from urllib.error import HTTPError
    from urllib.request import Request, urlopen

    from os_rerank.contracts import CONTRACT_NAMES
    from os_rerank.server.app import EndpointServer
    from os_rerank.server.scorers import LexicalScorer

    for contract in CONTRACT_NAMES:
        record = tmp_path / f"{contract}.jsonl"
        nonce = uuid.uuid4().hex
        query = f"{QUERY} [{nonce}]"
        body = json.dumps(get_contract(contract).build_request(query, DOCUMENTS), ensure_ascii=False)
        with EndpointServer(get_contract(contract), LexicalScorer(), record_path=record) as server:
            for text in ('{"not": "ours"}', body):  # a request the test must pass over, then its own
                request = Request(f"{server.url}/endpoints/os-rerank-cross-encoder/invocations",
                                  data=text.encode("utf-8"), headers={"Content-Type": "application/json"})
                try:
                    with urlopen(request, timeout=10) as reply:
                        assert reply.status == 200
                except HTTPError as exc:
                    assert text != body, exc
        bodies = _received(nonce, ["cat", str(record)])
        assert bodies == [body]
        pairs = _pairs(contract, bodies[0])
        assert not _differences([d for _, d in pairs], DOCUMENTS)
        assert not _differences([q for q, _ in pairs], [query] * len(DOCUMENTS))
