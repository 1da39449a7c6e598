"""workbench-export on the double (real nodes here are 2.19.1, without the Workbench): the eval set becomes a
Search Relevance Workbench query set and judgment list on 3.1+, idempotently; refusals say why and what to do."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from os_rerank.cli import main
from tests.fakes.opensearch_double import DEFAULT_PLUGINS, OpenSearchDouble

pytestmark = pytest.mark.unit  # layer 1 of the suite (README "Tests")

ROOT = Path(__file__).resolve().parent.parent
EVAL_SET = ("--queries", str(ROOT / "data/eval/queries.jsonl"), "--qrels", str(ROOT / "data/eval/qrels.txt"))
SRW = "/_plugins/_search_relevance"


@pytest.fixture
def double() -> Iterator[OpenSearchDouble]:
    with OpenSearchDouble(version="3.1.0", plugins=DEFAULT_PLUGINS | {"opensearch-search-relevance"}) as d:
        yield d


def _run(double: OpenSearchDouble, tmp_path: Path, *argv: str) -> tuple[int, str, str]:
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({"opensearch": {"url": double.url}, "sagemaker": {
        "region": "us-west-2", "endpoint_url": "http://127.0.0.1:9/endpoints/x/invocations"}}), encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    code = main(["workbench-export", "--config", str(config), *EVAL_SET, *argv], environ={}, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def _enable(double: OpenSearchDouble) -> None:
    import urllib.request

    request = urllib.request.Request(f"{double.url}/_cluster/settings", method="PUT", headers={
        "content-type": "application/json"}, data=json.dumps(
        {"persistent": {"plugins.search_relevance.workbench_enabled": True}}).encode())
    urllib.request.urlopen(request).read()
    double.clear_requests()


def _stored(double: OpenSearchDouble, kind: str) -> list[dict[str, Any]]:
    return list(double.workbench.stores[kind].values())


def test_export_creates_then_changes_nothing_then_replaces_what_changed(double: OpenSearchDouble,
                                                                        tmp_path: Path) -> None:
    _enable(double)
    code, out, err = _run(double, tmp_path, "--dry-run")
    assert (code, err) == (0, "")
    assert out.splitlines()[:2] == ["+ query set os-rerank-eval", f"PUT {SRW}/query_sets"]
    assert double.writes() == []
    code, report, err = _run(double, tmp_path, "--json")
    assert code == 0, err
    report = json.loads(report)
    assert report["writes_sent"] == 2
    (query_set,), (judgments,) = _stored(double, "query_sets"), _stored(double, "judgments")
    assert len(query_set["querySetQueries"]) == 34
    assert query_set["querySetQueries"][0]["queryText"] and query_set["name"] == "os-rerank-eval"
    first = judgments["judgmentRatings"][0]
    assert set(first) == {"query", "ratings"} and all(isinstance(r["rating"], str) for r in first["ratings"])
    assert any("서울" in q["queryText"] or "한국" in q["queryText"] for q in query_set["querySetQueries"])

    double.clear_requests()
    code, out, err = _run(double, tmp_path)
    assert (code, out.splitlines()[-1]) == (0, "No changes.")
    assert double.writes() == []

    fewer = tmp_path / "qrels.txt"
    fewer.write_text("\n".join((ROOT / "data/eval/qrels.txt").read_text(encoding="utf-8").splitlines()[:-3]) + "\n",
                     encoding="utf-8")
    code, out, err = _run(double, tmp_path, "--qrels", str(fewer))
    assert code == 0, err
    assert out.splitlines()[0].startswith("= query set os-rerank-eval: exists with this content")
    assert out.splitlines()[1] == f"-/+ judgments os-rerank-eval (replaces {judgments['id']})"
    assert [(r.method, r.path.split("/")[3]) for r in double.writes()] == [("DELETE", "judgments"),
                                                                          ("PUT", "judgments")]
    assert len(_stored(double, "judgments")) == 1


def test_export_refusals(double: OpenSearchDouble, tmp_path: Path) -> None:
    code, out, err = _run(double, tmp_path)  # the Workbench is off by default
    assert code == 4
    assert "os-rerank: error: fix: set the cluster setting plugins.search_relevance.workbench_enabled: true" in err
    _enable(double)
    code, out, err = _run(double, tmp_path, "--name", 'a "quoted" name')
    assert code == 2 and "the Workbench takes 1 to 2000 characters" in err
    # A query set under our name that os-rerank did not write is never replaced.
    double.workbench.stores["query_sets"]["theirs"] = {"name": "os-rerank-eval", "description": "hand made"}
    code, out, err = _run(double, tmp_path)
    assert code == 4 and "exists (id theirs) that os-rerank did not write" in err
    double.set_version("2.19.1")
    code, out, err = _run(double, tmp_path)
    assert code == 4
    assert err.splitlines()[0] == ("os-rerank: error: the Search Relevance Workbench needs OpenSearch 3.1.0 or newer "
                                   "with the opensearch-search-relevance plugin; this cluster is 2.19.1")
