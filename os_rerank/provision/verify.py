"""Verify: the predict roundtrip through OpenSearch against the endpoint called directly, then a reranked search.

OpenSearch hands scores back as FLOAT32, so the direct scores are rounded to float32 before comparing; the
tolerance (config.verify.tolerance, default 1e-4) bounds the difference that remains.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import cluster as cluster_module
from .. import mlcommons as ml
from ..cluster import Cluster
from ..config import Config
from ..errors import ClusterError, EndpointError, VerifyError
from .render import load_documents

# Text that breaks naive escaping, in every layer: JSON, Painless, commons-text substitution, Gson HTML-safe mode.
PROBES: tuple[str, ...] = (
    'She said "hello" and left.',
    "line one\nline two\r\nline three",
    "tab\tseparated\tvalues",
    "a back\\slash and C:\\path\\to\\file",
    "don't <b>bold</b> & 'quoted'",
    "서울은 대한민국의 수도이다.",
    "नई दिल्ली भारत की राजधानी है।",
    "costs $5, literally ${parameters.body} and $${x}",
)
# A predict that fails because the endpoint throttled or failed (5xx) is tried this many times in all: one bad
# answer from an autoscaling endpoint should not fail a verification.
PREDICT_ATTEMPTS = 3
_TRANSIENT_REMOTE = ("throttl", "too many requests", "service unavailable", "internal server error", "status code 5")

Scorer = Callable[[Config, str, Sequence[str]], list[float]]


@dataclass
class VerifyReport:
    """What verify compared and found; `passed` when there are no differences."""

    model_id: str
    query: str
    documents: list[str]
    opensearch_scores: list[float]
    endpoint_scores: list[float]
    tolerance: float
    max_difference: float
    top_hit: str | None = None
    expected_top: str | None = None
    retries: int = 0
    differences: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.differences

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed, "model_id": self.model_id, "query": self.query,
            "documents": len(self.documents), "tolerance": self.tolerance, "max_difference": self.max_difference,
            "opensearch_scores": self.opensearch_scores, "endpoint_scores": self.endpoint_scores,
            "top_hit": self.top_hit, "expected_top": self.expected_top, "retries": self.retries,
            "differences": self.differences,
        }

    def lines(self) -> list[str]:
        n = len(self.documents)
        if len(self.opensearch_scores) == len(self.endpoint_scores) == n:
            lines = [
                f"predict roundtrip: {n} scores through OpenSearch and from the endpoint; max |difference| "
                f"{self.max_difference:.3g} (tolerance {self.tolerance:g}, direct scores rounded to float32)"
            ]
        else:  # a call failed or answered short: the differences below say which
            lines = [
                f"predict roundtrip: {n} documents sent; {len(self.opensearch_scores)} scores came back through "
                f"OpenSearch, {len(self.endpoint_scores)} from the endpoint"
            ]
        if self.expected_top is not None:
            found = repr(_clip(self.top_hit)) if self.top_hit is not None else "none (the search failed)"
            lines.append(f"reranked search: top hit {found} (expected to contain {self.expected_top!r})")
        if self.retries:
            lines.append(f"({self.retries} predict call(s) retried after a transient endpoint failure)")
        lines.append("verify: ok" if self.passed else "verify: FAILED")
        return lines


def float32(value: float) -> float:
    """`value` rounded to the nearest IEEE float32, as OpenSearch returns model scores."""
    return float(struct.unpack("f", struct.pack("f", float(value)))[0])


def probe_documents(config: Config) -> list[str]:
    """The sample passages (their document fields joined, as the rerank processor does) plus the hard probes."""
    docs = load_documents(config)
    fields = config.pipeline.document_fields
    return ["".join(str(d.get(f, "")) for f in fields) for d in docs] + list(PROBES)


def predict(cluster: Cluster, model_id: str, query: str, docs: Sequence[str]) -> tuple[list[float], int]:
    """Scores from `_predict/text_similarity/<model_id>` in input order, and how many retries it took."""
    body = {"query_text": query, "text_docs": list(docs)}
    retries = 0
    while True:
        try:
            result = cluster.request("POST", ml.predict_path(model_id), body=body)
            break
        except ClusterError as exc:
            status = exc.status or 0
            transient = status == 429 or status >= 500 or any(t in exc.message.lower() for t in _TRANSIENT_REMOTE)
            if not transient or retries + 1 >= PREDICT_ATTEMPTS:
                raise
            cluster.sleep(cluster_module.RETRY_BASE_SECONDS * 2**retries)
            retries += 1
    try:
        output = result["inference_results"][0]["output"]
        return [float(t["data"][0]) for t in output], retries
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise VerifyError(
            f"predict returned an unexpected shape ({type(exc).__name__}: {exc})",
            [f"response: {str(result)[:300]}"],
            fix="the post-process script must return one FLOAT32 tensor with data per document",
        ) from None


def compare_scores(through: Sequence[float], direct: Sequence[float], tolerance: float) -> tuple[list[str], float]:
    """Differences between OpenSearch's scores and the endpoint's (rounded to float32), and the largest gap."""
    if len(through) != len(direct):
        return [f"count: {len(through)} scores through OpenSearch, {len(direct)} from the endpoint"], float("inf")
    rounded = [float32(s) for s in direct]
    diffs = [abs(a - b) for a, b in zip(through, rounded, strict=True)]
    worst = max(diffs, default=0.0)
    out = [f"document {i}: {a!r} through OpenSearch vs {b!r} direct (|diff| {d:.3g} > {tolerance:g})"
           for i, (a, b, d) in enumerate(zip(through, rounded, diffs, strict=True)) if d > tolerance]
    # Same order: any two documents the endpoint clearly ranks apart must come back ranked the same way.
    for i in range(len(rounded)):
        for j in range(i + 1, len(rounded)):
            if abs(rounded[i] - rounded[j]) > 2 * tolerance and (rounded[i] > rounded[j]) != (through[i] > through[j]):
                out.append(f"order: documents {i} and {j} are ranked the other way round through OpenSearch")
                return out, worst
    return out, worst


def search_top_hit(cluster: Cluster, config: Config) -> str | None:
    """The document text of the top hit when searching the test index through the rerank pipeline."""
    fields = config.pipeline.document_fields
    body = {
        "query": {"multi_match": {"query": config.verify.query, "fields": fields}} if len(fields) > 1
        else {"match": {fields[0]: config.verify.query}},
        "size": 10,
        "ext": {"rerank": {"query_context": {"query_text": config.verify.query}}},
    }
    result = cluster.request("POST", f"/{config.index.name}/_search", body=body,
                             params={"search_pipeline": config.pipeline.name})
    hits = ((result or {}).get("hits") or {}).get("hits") or []
    if not hits:
        return None
    source = hits[0].get("_source") or {}
    return " ".join(str(source.get(f, "")) for f in fields)


def verify(cluster: Cluster, config: Config, model_id: str, *, scorer: Scorer | None = None) -> VerifyReport:
    """The VerifyReport for `model_id`; VerifyError (exit 6) listing what differed when anything did."""
    from ..endpoint import score_documents

    scorer = scorer or score_documents
    query = config.verify.query
    docs = probe_documents(config)
    report = VerifyReport(model_id, query, docs, [], [], config.verify.tolerance, 0.0,
                          expected_top=config.verify.expected_top)
    try:
        report.opensearch_scores, report.retries = predict(cluster, model_id, query, docs)
    except ClusterError as exc:
        if exc.status is None:  # no answer from the cluster at all: not a verification result
            raise
        report.differences.append(f"predict through OpenSearch failed: {_with_fix(exc)}")
    try:
        report.endpoint_scores = scorer(config, query, docs)
    except EndpointError as exc:
        report.differences.append(f"calling the endpoint directly failed: {_with_fix(exc)}")
    if not report.differences:
        differences, report.max_difference = compare_scores(report.opensearch_scores, report.endpoint_scores,
                                                             config.verify.tolerance)
        report.differences.extend(differences)
    if config.verify.expected_top is not None:
        try:
            report.top_hit = search_top_hit(cluster, config)
        except ClusterError as exc:
            if exc.status is None:
                raise
            report.differences.append(f"search through pipeline {config.pipeline.name} failed: {_with_fix(exc)}")
        else:
            if report.top_hit is None or config.verify.expected_top not in report.top_hit:
                report.differences.append(
                    f"search: top hit through pipeline {config.pipeline.name} is {_clip(report.top_hit)!r}, "
                    f"expected it to contain {config.verify.expected_top!r}")
    if config.embedding is not None:  # the dense first stage: its vectors and a reranked hybrid search (dense.py)

        report.differences.extend(_dense_differences(cluster, config))
    return report


def _with_fix(exc: ClusterError | EndpointError) -> str:
    return exc.message + (f" (fix: {exc.fix})" if exc.fix else "")


def check(report: VerifyReport) -> None:
    """Nothing when the report passed; VerifyError with every difference otherwise."""
    if report.passed:
        return
    raise VerifyError(
        f"verification failed for model {report.model_id}: {len(report.differences)} difference(s)",
        report.differences,
        fix="check that sagemaker.contract is the contract the endpoint speaks, and that the connector's scripts "
        "are the ones `os-rerank render` prints (run `os-rerank setup` to update them)",
    )


def _clip(text: str | None, limit: int = 80) -> str | None:
    if text is None:
        return None
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _dense_differences(cluster: Cluster, config: Config) -> list[str]:
    """What differs on the dense path: vectors through OpenSearch vs from the endpoint directly (verify.tolerance,
    float32 rounding inside), and the top hit of a reranked hybrid search vs verify.expected_top."""
    from ..search.dense_query import embed_texts, embedding_model_id, first_stage
    from ..search.query import build_search_body, execute, first_stage_query
    from .dense_render import names

    out: list[str] = []
    query = config.verify.query
    texts = [query, *[str(d.get(names(config).text_field, "")) for d in load_documents(config)][:3]]
    texts = [t for t in texts if t.strip()]
    try:
        model_id = embedding_model_id(cluster, config)
        result = cluster.request("POST", ml.predict_path(model_id, "text_embedding"),
                                 body={"text_docs": texts})
    except ClusterError as exc:
        if exc.status is None:
            raise
        return [f"embedding predict through OpenSearch failed: {exc.message}"]
    got = [list(t.get("data") or []) for r in result.get("inference_results") or [] for t in r.get("output") or []]
    try:
        want = embed_texts(config, texts)
    except EndpointError as exc:
        return [f"calling the embedding endpoint directly failed: {exc.message}"]
    if len(got) != len(want):
        out.append(f"embedding: {len(got)} vectors through OpenSearch for {len(texts)} texts")
    else:
        worst = max((abs(float(a) - b) for g, w in zip(got, want, strict=True) for a, b in zip(g, w, strict=True)),
                    default=0.0)
        if any(len(g) != len(w) for g, w in zip(got, want, strict=True)) or worst > config.verify.tolerance:
            out.append(f"embedding: vectors through OpenSearch differ from the endpoint's by up to {worst:.3g} "
                       f"(tolerance {config.verify.tolerance:g})")
    if config.verify.expected_top is not None and not out:
        lexical = first_stage_query(query, config.pipeline.document_fields)
        stage = first_stage(config, "hybrid", query, window=10, lexical=lexical, model_id=model_id)
        try:
            page = execute(cluster, stage.index, build_search_body(query, query=stage.query, window=10, rerank=True,
                                                                   base=stage.base), pipeline=stage.rerank_pipeline)
        except ClusterError as exc:
            if exc.status is None:
                raise
            return [f"hybrid search through {stage.rerank_pipeline} failed: {exc.message}"]
        top = page.hits[0].source.get(names(config).text_field) if page.hits else None
        if not isinstance(top, str) or config.verify.expected_top not in top:
            out.append(f"hybrid search: top hit through {stage.rerank_pipeline} is {str(top)[:80]!r}, expected it "
                       f"to contain {config.verify.expected_top!r}")
    return out
