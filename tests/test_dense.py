"""The dense path's pure pieces (dense.py, dense_render.py, dense_query.py) and its config section: bodies, names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from os_rerank.config import Config, load_config
from os_rerank.errors import ConfigError, UsageError
from os_rerank.provision import dense, dense_render
from os_rerank.provision.plan import NO_CHANGE, Action
from os_rerank.provision.state import TRUSTED_REGEX, ClusterState
from os_rerank.search import dense_query
from os_rerank.wire import DEPLOY, Ref, Secret, placeholders

pytestmark = pytest.mark.unit  # layer 1 of the suite (README "Tests")

ROOT = Path(__file__).resolve().parent.parent


def _config(tmp_path: Path, **embedding: object) -> Config:
    body = {"sagemaker": {"region": "us-west-2", "endpoint_name": "rerank"},
            "embedding": {"endpoint_name": "embed", **embedding}}
    path = tmp_path / "c.yaml"
    path.write_text(json.dumps(body), encoding="utf-8")
    return load_config(path, {})


def test_the_example_section_loads_when_uncommented(tmp_path: Path) -> None:
    lines = (ROOT / "config.example.yaml").read_text(encoding="utf-8").splitlines()
    start = lines.index("# embedding:")
    block = [line[2:] for line in lines[start:] if line.startswith("# ") and not line.startswith("#   # ")]
    text = "\n".join(lines[:start] + block)
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    config = load_config(path, {})
    assert config.embedding is not None and config.embedding.contract == "vector-embedding"


@pytest.mark.parametrize(("embedding", "message"), [
    ({"text_field": "nope"}, "embedding.text_field: nope not in index.fields (passage_text)"),
    ({"vector_field": "passage_text"}, "embedding.vector_field: passage_text is a text field in index.fields"),
    ({"index": "my-test-data"}, "embedding.index: my-test-data is index.name"),
    ({"index": "my-test-data-eval"}, "embedding.index: my-test-data-eval is the index eval loads"),
    ({"model_name": "os-rerank cross-encoder"}, "embedding.model_name: os-rerank cross-encoder is also model.name"),
    ({"connector_name": "os-rerank sagemaker cross-encoder"}, "embedding.connector_name: os-rerank sagemaker "
     "cross-encoder is also connector.name"),
    ({"hybrid_pipeline": "rerank_pipeline_sagemaker"}, "embedding.hybrid_pipeline: rerank_pipeline_sagemaker is also "
     "pipeline.name"),
    ({"contract": "hf-text-classification"}, "embedding.contract: must be one of"),
    ({"lexical_weight": 1.0}, "embedding.lexical_weight"),
    ({"dimension": 0}, "embedding.dimension"),
])
def test_bad_embedding_sections_name_the_field(tmp_path: Path, embedding: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        _config(tmp_path, **embedding)
    assert message in str(error.value)


def test_names_and_bodies(tmp_path: Path) -> None:
    config = _config(tmp_path, local_endpoint_url="http://127.0.0.1:8081", lexical_weight=0.3)
    n = dense_render.names(config)
    assert (n.index, n.text_field, n.connector_url) == (
        "my-test-data-dense", "passage_text", "http://127.0.0.1:8081/endpoints/embed/invocations")
    index = dense_render.dense_index_body(config, 384)
    assert index["settings"]["index"]["knn"] is True
    assert index["settings"]["index"]["default_pipeline"] == "os_rerank_embedding"
    assert index["mappings"]["properties"]["embedding"]["method"] == {"name": "hnsw", "engine": "lucene",
                                                                       "space_type": "cosinesimil"}
    plain = dense_render.hybrid_pipeline_body(config, rerank_model_id=None)
    weights = plain["phase_results_processors"][0]["normalization-processor"]["combination"]["parameters"]["weights"]
    assert weights == [0.3, 0.7] and "response_processors" not in plain
    reranked = dense_render.hybrid_pipeline_body(config, rerank_model_id="m1")
    assert reranked["response_processors"][0]["rerank"]["ml_opensearch"]["model_id"] == "m1"
    connector = dense_render.connector_body(config, version=(2, 19, 1), credential={"roleArn": "x"})
    assert connector["parameters"] == {"region": "us-west-2", "service_name": "sagemaker",
                                       "input_docs_processed_step_size": "16"}
    assert connector["actions"][0]["request_body"] == "${parameters.body}"


def test_the_settings_action_also_admits_the_embedding_url(tmp_path: Path) -> None:
    config = _config(tmp_path, endpoint_url="http://10.0.0.5:8081/endpoints/embed/invocations")
    state = ClusterState((2, 19, 1), ("^https://runtime\\.sagemaker\\..*$",), True, None)
    unchanged = Action(NO_CHANGE, "settings", "cluster settings", "trusted endpoint regex admits the rerank URL")
    url = dense_render.names(config).connector_url
    action = dense.admit_url(unchanged, state, url)
    assert action.body == {"persistent": {TRUSTED_REGEX: ["^https://runtime\\.sagemaker\\..*$",
                                                          "^http://10\\.0\\.0\\.5:8081/endpoints/embed/invocations$"]}}
    admitted = ClusterState((2, 19, 1), (".*",), True, None)
    assert dense.admit_url(unchanged, admitted, url) is unchanged


def test_a_fresh_dense_plan_carries_its_requests_with_placeholders(tmp_path: Path) -> None:
    config = _config(tmp_path)
    empty = dense.DenseState((), (), None, None, None, None)
    actions = dense.dense_actions(config, (2, 19, 1), empty, 384, None, Ref("model group"))
    requests = [(a.resource, r.method, r.shown_path, r.yields) for a in actions for r in a.requests]
    assert requests == [
        ("embedding connector", "POST", "/_plugins/_ml/connectors/_create", "embedding connector"),
        ("embedding model", "POST", "/_plugins/_ml/models/_register", "embedding model"),
        ("embedding model", "POST", "/_plugins/_ml/models/(known after apply)/_deploy", None),
        ("ingest pipeline", "PUT", "/_ingest/pipeline/os_rerank_embedding", None),
        ("dense index", "PUT", "/my-test-data-dense", None),
        ("dense documents", "POST", "/_bulk?refresh=true", None),
        ("hybrid pipeline", "PUT", "/_search/pipeline/os_rerank_hybrid", None),
        ("hybrid pipeline", "PUT", "/_search/pipeline/os_rerank_hybrid_rerank", None)]
    connector, model, ingest, _, documents, _, reranked = actions
    assert isinstance(connector.requests[0].body["credential"], Secret)
    assert connector.to_dict()["body"]["credential"] == {"access_key": "***", "secret_key": "***"}
    register, deploy = model.requests
    assert (repr(register.body["connector_id"]), repr(register.body["model_group_id"])) == (
        "Ref('embedding connector')", "Ref('model group')")
    assert sorted(repr(p) for p in placeholders([register.body, deploy.target])) == [
        "Ref('embedding connector')", "Ref('embedding model')", "Ref('model group')"]
    assert deploy.role == DEPLOY
    values = {"embedding connector": "c9", "model group": "g9", "embedding model": "e9", "model": "m9"}
    assert ingest.requests[0].filled(values).body["processors"][0]["text_embedding"]["model_id"] == "e9"
    rerank = reranked.requests[0].filled(values).body["response_processors"][0]["rerank"]
    assert rerank["ml_opensearch"]["model_id"] == "m9"
    bulk = documents.requests[0]
    assert (bulk.content_type, bulk.body) == ("application/x-ndjson", dense_render.documents_text(config))


def test_an_embedding_model_in_another_model_group_is_replaced(tmp_path: Path) -> None:
    """As the rerank model is: a model.group change moves both models (and teardown then finds the old group empty)."""
    from os_rerank.mlcommons import Found
    from os_rerank.provision.plan import NO_CHANGE as SAME
    from os_rerank.provision.plan import REPLACE

    config = _config(tmp_path)
    live_connector = Action(SAME, "embedding connector", "os-rerank sagemaker embedding", "matches", id="c1")
    model = Found("e1", {"name": "os-rerank embedding", "connector_id": "c1", "model_group_id": "g-old",
                         "model_state": "DEPLOYED"})
    state = dense.DenseState((), (model,), None, None, None, None)
    replaced = dense._model(config, state, live_connector, "g-new")
    assert replaced.kind == REPLACE and replaced.reason.startswith("embedding model is in model group g-old")
    assert [r.method for r in replaced.requests] == ["POST", "DELETE", "POST", "POST"]  # undeploy, delete, register
    assert dense._model(config, state, live_connector, "g-old").kind == SAME
    assert dense._model(config, state, live_connector, None).kind == SAME  # no group asked: ML Commons' own one


def test_first_stages(tmp_path: Path) -> None:
    config = _config(tmp_path, k=50)
    lexical = {"match": {"passage_text": {"query": "q"}}}
    hybrid = dense_query.first_stage(config, "hybrid", "q", window=80, lexical=lexical, model_id="m")
    assert hybrid.query == {"hybrid": {"queries": [lexical, {"neural": {"embedding": {
        "query_text": "q", "model_id": "m", "k": 80}}}]}}
    assert (hybrid.rerank_pipeline, hybrid.plain_pipeline) == ("os_rerank_hybrid_rerank", "os_rerank_hybrid")
    assert hybrid.base == {"_source": {"excludes": ["embedding"]}}
    plain = load_config(_write(tmp_path, {"sagemaker": {"region": "us-west-2", "endpoint_name": "r"}}), {})
    assert dense_query.default_first_stage(plain) == "lexical" and dense_query.default_first_stage(config) == "hybrid"
    with pytest.raises(UsageError, match="needs the embedding section"):
        dense_query.first_stage(plain, "dense", "q", window=10, lexical=lexical)


def _write(tmp_path: Path, body: dict[str, object]) -> Path:
    path = tmp_path / "plain.yaml"
    path.write_text(json.dumps(body), encoding="utf-8")
    return path


def test_render_dense_prints_what_setup_sends(tmp_path: Path) -> None:
    import io

    from os_rerank.cli import main

    for dimension, shown in ((384, '"dimension": 384'), (None, '"dimension": "(known after the probe)"')):
        section = {"endpoint_name": "embed", **({"dimension": dimension} if dimension else {})}
        path = _write(tmp_path, {"sagemaker": {"region": "us-west-2", "endpoint_name": "r"}, "embedding": section})
        out, err = io.StringIO(), io.StringIO()
        assert main(["render", "--what", "dense", "--config", str(path)], environ={}, stdout=out, stderr=err) == 0
        text = out.getvalue()
        assert [line for line in text.splitlines() if line.startswith("# ")] == [
            "# embedding connector", "# embedding model", "# ingest pipeline", "# dense index", "# dense documents",
            "# hybrid pipeline", "# hybrid pipeline"]
        assert shown in text and "PUT /my-test-data-dense" in text and '"secret_key": "***"' in text
    plain = _write(tmp_path, {"sagemaker": {"region": "us-west-2", "endpoint_name": "r"}})
    out, err = io.StringIO(), io.StringIO()
    assert main(["render", "--what", "dense", "--config", str(plain)], environ={}, stdout=out, stderr=err) == 2
    assert "--what dense needs the embedding section" in err.getvalue()
