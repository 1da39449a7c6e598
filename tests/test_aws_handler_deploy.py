"""`endpoint deploy` with os-rerank's handler against moto's S3, STS and SageMaker (real boto3 above them).

The archive goes to S3 under a content hash, the model points at it with the handler's environment, a second
deploy writes nothing, a changed model directory or contract goes through a new model (and only a changed archive
is uploaded), the dry-run plan is what deploy then sends, and delete removes the archives os-rerank uploaded.
"""

from __future__ import annotations

import copy
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.unit  # layer 1 of the suite (README "Tests")

boto3 = pytest.importorskip("boto3", reason="boto3 is needed for the AWS side")
pytest.importorskip("moto", reason="moto[sagemaker] is needed for the AWS side (pip install -e '.[test]')")

from moto import mock_aws  # noqa: E402

from os_rerank.aws import endpoint as aws_endpoint  # noqa: E402
from os_rerank.aws.archive import CODE_FILES, build_model_archive  # noqa: E402
from os_rerank.aws.endpoint import AwsClients, deploy_endpoint  # noqa: E402
from os_rerank.aws.plan import plan_deploy  # noqa: E402
from os_rerank.config import load_config  # noqa: E402
from os_rerank.errors import AwsError, ConfigError, ExitStatus  # noqa: E402
from tests.support.aws import ROLE  # noqa: E402

REGION = "us-west-2"
ENDPOINT = "os-rerank-ce"
ACCOUNT = "123456789012"  # moto's
DEFAULT_BUCKET = f"sagemaker-{REGION}-{ACCOUNT}"
CODE = sorted(name for name, _ in CODE_FILES)
S3_WRITES = ("CreateBucket", "PutObject", "DeleteObject")


def write(tmp_path: Path, deploy: str, *, contract: str = "pairs-scores") -> Any:
    path = tmp_path / "config.yaml"
    path.write_text(f"sagemaker:\n  region: {REGION}\n  endpoint_name: {ENDPOINT}\n  contract: {contract}\n"
                    f"deploy:\n  execution_role_arn: {ROLE}\n{deploy}", encoding="utf-8")
    return load_config(path, env={})


def model_dir(tmp_path: Path, weights: bytes = b"w1") -> Path:
    directory = tmp_path / "my-model"
    directory.mkdir(exist_ok=True)
    (directory / "config.json").write_text('{"num_labels": 1}', encoding="utf-8")
    (directory / "model.onnx").write_bytes(weights)
    return directory


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsClients]:
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        yield AwsClients(boto3.client("sagemaker", region_name=REGION),
                         boto3.client("application-autoscaling", region_name=REGION),
                         boto3.client("s3", region_name=REGION), boto3.client("sts", region_name=REGION))


def no_sleep(_: float) -> None:
    pass


def objects(clients: AwsClients, bucket: str = DEFAULT_BUCKET) -> dict[str, bytes]:
    listed = clients.s3.list_objects_v2(Bucket=bucket).get("Contents") or []
    return {o["Key"]: clients.s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}


def members(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getnames()


def container(clients: AwsClients, model_name: str) -> dict[str, Any]:
    return dict(clients.sagemaker.describe_model(ModelName=model_name)["PrimaryContainer"])


def test_code_only_with_hf_model_id_then_nothing_to_write(tmp_path: Path, clients: AwsClients) -> None:
    config = write(tmp_path, "  preset: bge-reranker-base\n")
    events: list[str] = []
    first = deploy_endpoint(config, clients, on_event=lambda event: events.append(event.line()), sleep=no_sleep)
    assert first.outcome == "created"
    assert first.writes == ("CreateBucket", "PutObject", "CreateModel", "CreateEndpointConfig", "CreateEndpoint")
    stored = objects(clients)
    [(key, data)] = stored.items()
    archive = build_model_archive(None, tmp_path / "again.tar.gz")  # the same bytes, built again
    assert key == f"os-rerank/{ENDPOINT}/{archive.sha256[:16]}/model.tar.gz" and data == archive.path.read_bytes()
    assert members(data) == CODE
    head = clients.s3.head_object(Bucket=DEFAULT_BUCKET, Key=key)
    assert head["Metadata"] == {"sha256": archive.sha256}
    assert first.model_data_url == f"s3://{DEFAULT_BUCKET}/{key}"
    model = container(clients, first.model_name)
    assert model["ModelDataUrl"] == first.model_data_url
    assert model["Environment"] == {
        "SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
        "SAGEMAKER_CONTAINER_LOG_LEVEL": "20", "SAGEMAKER_REGION": REGION, "OS_RERANK_CONTRACT": "pairs-scores",
        "HF_MODEL_ID": "BAAI/bge-reranker-base"}
    assert model["Image"] == aws_endpoint.default_image_uri(REGION, "ml.m5.xlarge")
    assert any(e.startswith(f"uploading s3://{DEFAULT_BUCKET}/{key}") for e in events)

    before = len(clients.calls)
    again = deploy_endpoint(write(tmp_path, "  preset: bge-reranker-base\n"), clients, sleep=no_sleep)
    assert (again.outcome, again.writes) == ("unchanged", ())
    assert clients.calls[before:] == ["GetCallerIdentity", "HeadBucket", "HeadObject", "DescribeEndpoint",
                                      "DescribeEndpointConfig", "DescribeModel"]


def test_a_local_model_directory_is_packaged_and_a_change_replaces_it(
    tmp_path: Path, clients: AwsClients, moto_update_endpoint: None
) -> None:
    directory = model_dir(tmp_path)
    deploy = "  model_dir: my-model\n  instance_type: ml.c5.xlarge\n"
    first = deploy_endpoint(write(tmp_path, deploy, contract="query-documents-topk"), clients, sleep=no_sleep)
    [(old_key, data)] = objects(clients).items()
    assert members(data) == sorted([*CODE, "config.json", "model.onnx"])
    env = container(clients, first.model_name)["Environment"]
    assert env["OS_RERANK_CONTRACT"] == "query-documents-topk" and "HF_MODEL_ID" not in env
    assert [w for w in first.warnings if "holds no torch weights" in w]  # the DLC has no onnxruntime
    (directory / "model.safetensors").write_bytes(b"t")
    assert aws_endpoint.endpoint_spec(write(tmp_path, deploy)).warnings == ()
    (directory / "model.safetensors").unlink()

    (directory / "model.onnx").write_bytes(b"w2")  # new weights: a new archive, model and endpoint config
    second = deploy_endpoint(write(tmp_path, deploy, contract="query-documents-topk"), clients, sleep=no_sleep)
    assert second.outcome == "updated"
    assert second.writes == ("PutObject", "CreateModel", "CreateEndpointConfig", "UpdateEndpoint",
                             "DeleteEndpointConfig", "DeleteModel", "DeleteObject")
    assert any(c.startswith("model data s3://") for c in second.changes)
    assert list(objects(clients)) == [second.model_data_url.split("/", 3)[3]] != [old_key]  # the old one deleted

    # Another contract: the same archive, a new model (the environment differs); nothing uploaded.
    third = deploy_endpoint(write(tmp_path, deploy, contract="tei-rerank"), clients, sleep=no_sleep)
    assert third.writes == ("CreateModel", "CreateEndpointConfig", "UpdateEndpoint", "DeleteEndpointConfig",
                            "DeleteModel")
    assert third.model_data_url == second.model_data_url
    assert container(clients, third.model_name)["Environment"]["OS_RERANK_CONTRACT"] == "tei-rerank"


def test_an_archive_removed_behind_our_back_is_uploaded_again(tmp_path: Path, clients: AwsClients) -> None:
    config = write(tmp_path, "  preset: ms-marco-minilm-l6\n")
    first = deploy_endpoint(config, clients, sleep=no_sleep)
    bucket, key = first.model_data_url[5:].split("/", 1)  # type: ignore[index]
    clients.s3.delete_object(Bucket=bucket, Key=key)
    # SageMaker reads the archive whenever it starts an instance (scaling out, replacing a failed one)
    assert deploy_endpoint(config, clients, sleep=no_sleep).writes == ("PutObject",)


def test_a_configured_bucket_is_used_never_created(tmp_path: Path, clients: AwsClients) -> None:
    config = write(tmp_path, "  preset: ms-marco-minilm-l6\n  s3_bucket: my-models\n  s3_prefix: team/rerank\n")
    with pytest.raises(AwsError) as info:
        deploy_endpoint(config, clients, sleep=no_sleep)
    assert info.value.exit_code == ExitStatus.AWS
    assert "S3 bucket my-models (deploy.s3_bucket) does not exist" in info.value.message
    assert "CreateModel" not in clients.calls
    clients.s3.create_bucket(Bucket="my-models", CreateBucketConfiguration={"LocationConstraint": REGION})
    result = deploy_endpoint(config, clients, sleep=no_sleep)
    assert result.writes[0] == "PutObject" and "CreateBucket" not in result.writes
    assert result.model_data_url is not None
    assert result.model_data_url.startswith(f"s3://my-models/team/rerank/{ENDPOINT}/")
    assert "GetCallerIdentity" not in clients.calls  # no account needed for a named bucket


def test_the_stock_container_is_unchanged_by_the_handler(tmp_path: Path, clients: AwsClients) -> None:
    config = write(tmp_path, "  preset: ms-marco-minilm-l6\n", contract="hf-text-classification")
    result = deploy_endpoint(config, clients, sleep=no_sleep)
    assert result.writes == ("CreateModel", "CreateEndpointConfig", "CreateEndpoint")
    assert result.model_data_url is None and "ModelDataUrl" not in container(clients, result.model_name)
    calls = len(clients.calls)
    aws_endpoint.delete_endpoint(config, clients)
    assert not [c for c in clients.calls[calls:] if c in ("GetCallerIdentity", "HeadBucket", "ListObjectsV2")]
    deploy_endpoint(config, clients, sleep=no_sleep)
    # the same contract through os-rerank's handler instead: a model with the archive, via UpdateEndpoint
    handler = write(tmp_path, "  preset: ms-marco-minilm-l6\n  handler: os-rerank\n",
                    contract="hf-text-classification")
    plan = plan_deploy(handler, clients)
    assert plan.writes == ("CreateBucket", "PutObject", "CreateModel", "CreateEndpointConfig", "UpdateEndpoint",
                           "DeleteEndpointConfig", "DeleteModel")


@pytest.mark.parametrize("step", ["create", "unchanged", "update", "autoscaling"])
def test_the_dry_run_plan_is_what_deploy_sends(tmp_path: Path, clients: AwsClients, step: str,
                                               moto_update_endpoint: None) -> None:
    directory = model_dir(tmp_path)
    deploy = "  model_dir: my-model\n"
    if step != "create":
        deploy_endpoint(write(tmp_path, deploy), clients, sleep=no_sleep)
    if step == "update":
        (directory / "model.onnx").write_bytes(b"other weights")
    if step == "autoscaling":
        deploy += "  autoscaling: {min: 1, max: 2}\n"
    config = write(tmp_path, deploy)
    before = list(clients.calls)
    plan = plan_deploy(config, clients)
    assert [c for c in clients.calls[len(before):] if not c.startswith(("Describe", "List", "Get", "Head"))] == []
    sent: list[tuple[str, dict[str, Any]]] = []  # every SageMaker and Auto Scaling write, with its parameters

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        if not model.name.startswith(("Describe", "List", "Get", "Head")):
            sent.append((model.name, copy.deepcopy(params)))

    for client in (clients.sagemaker, clients.autoscaling):
        client.meta.events.register("provide-client-params.*.*", record)
    result = deploy_endpoint(config, clients, sleep=no_sleep)
    assert plan.writes == result.writes
    # The plan's calls are the deploy's calls: same operations, same parameters (S3's carry the archive's bytes).
    assert sent == [(s.operation, s.params) for s in plan.steps if s.operation not in ("no change", *S3_WRITES)]
    assert (plan.model_name, plan.config_name, plan.model_data_url) == (
        result.model_name, result.config_name, result.model_data_url)
    created = [s for s in plan.steps if s.operation == "CreateModel"]
    for s in created:  # the body planned is the model SageMaker has
        have = clients.sagemaker.describe_model(ModelName=s.target)
        assert s.body == {"PrimaryContainer": have["PrimaryContainer"], "ExecutionRoleArn": have["ExecutionRoleArn"]}
    if step == "unchanged":
        assert [s.operation for s in plan.steps] == ["no change"] and result.writes == ()


def test_delete_removes_the_archives_it_uploaded_and_nothing_else(tmp_path: Path, clients: AwsClients) -> None:
    config = write(tmp_path, "  preset: ms-marco-minilm-l6\n")
    result = deploy_endpoint(config, clients, sleep=no_sleep)
    stale = f"os-rerank/{ENDPOINT}/0123456789abcdef/model.tar.gz"  # left by an older deploy
    kept = [f"os-rerank/{ENDPOINT}/notes.txt", f"os-rerank/{ENDPOINT}-other/0123456789abcdef/model.tar.gz"]
    for key in [stale, *kept]:
        clients.s3.put_object(Bucket=DEFAULT_BUCKET, Key=key, Body=b"x")
    deleted = aws_endpoint.delete_endpoint(config, clients)
    assert f"s3 object {result.model_data_url}" in deleted.deleted
    assert f"s3 object s3://{DEFAULT_BUCKET}/{stale}" in deleted.deleted
    assert sorted(objects(clients)) == sorted(kept)
    assert clients.sagemaker.list_models()["Models"] == []
    assert not [d for d in aws_endpoint.delete_endpoint(config, clients).deleted if d.startswith("s3 object")]


def test_a_model_dir_that_is_not_one_is_a_config_error(tmp_path: Path, clients: AwsClients) -> None:
    with pytest.raises(ConfigError, match=r"config.yaml: deploy.model_dir: .*missing is not a directory"):
        deploy_endpoint(write(tmp_path, "  model_dir: missing\n"), clients, sleep=no_sleep)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"deploy.model_dir: .*empty: no config.json"):
        plan_deploy(write(tmp_path, "  model_dir: empty\n"), clients)
    assert [c for c in clients.calls if not c.startswith(("Describe", "List", "Get", "Head"))] == []


def test_status_shows_the_archive_and_the_contract(tmp_path: Path, clients: AwsClients) -> None:
    deploy = "  preset: bge-reranker-large\n  instance_type: ml.m5.xlarge\n"  # moto knows no ml.g5
    config = write(tmp_path, deploy, contract="query-documents-topk")
    result = deploy_endpoint(config, clients, sleep=no_sleep)
    status = aws_endpoint.endpoint_status(config, clients)
    assert status["model_data"] == result.model_data_url
    assert status["handler_contract"] == "query-documents-topk"
    assert status["differences_from_config"] == []
    changed = write(tmp_path, deploy, contract="tei-rerank")
    assert any("OS_RERANK_CONTRACT" in d for d in aws_endpoint.endpoint_status(changed, clients)
               ["differences_from_config"])


def test_plan_json_is_json(tmp_path: Path, clients: AwsClients) -> None:
    plan = plan_deploy(write(tmp_path, "  preset: ms-marco-minilm-l6\n"), clients)
    data = json.loads(json.dumps(plan.to_json()))
    assert data["writes"] == ["CreateBucket", "PutObject", "CreateModel", "CreateEndpointConfig", "CreateEndpoint"]
    assert data["archive"]["members"] == CODE and data["handler"] == "os-rerank"


def test_a_large_archive_goes_up_in_parts_with_its_hash(tmp_path: Path, clients: AwsClients,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from os_rerank.aws import artifact as model_artifact

    monkeypatch.setattr(model_artifact, "_MULTIPART_THRESHOLD", 1024)  # the code-only archive is ~15 kB
    config = write(tmp_path, "  preset: ms-marco-minilm-l6\n")
    result = deploy_endpoint(config, clients, sleep=no_sleep)
    assert result.writes[:4] == ("CreateBucket", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload")
    bucket, key = str(result.model_data_url)[5:].split("/", 1)
    archive = build_model_archive(None, tmp_path / "again.tar.gz")
    assert clients.s3.head_object(Bucket=bucket, Key=key)["Metadata"] == {"sha256": archive.sha256}
    assert objects(clients)[key] == archive.path.read_bytes()
    assert deploy_endpoint(config, clients, sleep=no_sleep).writes == ()


def test_an_embedding_model_is_deployed_by_the_same_handler_with_its_contract(tmp_path: Path,
                                                                             clients: AwsClients) -> None:
    """deploy.embedding_contract: the same archive and handler, the model's environment names the embedding
    contract (the handler then embeds: tests/test_sagemaker_handler_embedding.py), and nothing else changes."""
    directory = model_dir(tmp_path)
    (directory / "model.safetensors").write_bytes(b"weights")
    deploy = "  model_dir: my-model\n  embedding_contract: tei-embed\n"
    config = write(tmp_path, deploy)
    plan = plan_deploy(config, clients)
    result = deploy_endpoint(config, clients, sleep=no_sleep)
    assert result.outcome == "created" and plan.model_name == result.model_name
    [(_, data)] = objects(clients).items()
    assert "code/os_rerank/server/embedders.py" in members(data)
    assert "code/os_rerank/embedding_contracts.py" in members(data)
    environment = container(clients, result.model_name)["Environment"]
    assert environment["OS_RERANK_EMBEDDING_CONTRACT"] == "tei-embed" and "OS_RERANK_CONTRACT" not in environment
    assert aws_endpoint.endpoint_status(config, clients)["handler_contract"] == "tei-embed"
    before = len(clients.calls)
    assert deploy_endpoint(write(tmp_path, deploy), clients, sleep=no_sleep).writes == ()
    assert not [c for c in clients.calls[before:] if c.startswith(("Create", "Put", "Update"))]


@pytest.mark.parametrize(("deploy", "message"), [
    ("  model_dir: my-model\n  embedding_contract: tei\n", "config.yaml:8: deploy.embedding_contract: expected one of "
     "vector-embedding, hf-feature-extraction, tei-embed, got 'tei'"),
    ("  preset: bge-reranker-base\n  embedding_contract: tei-embed\n", "embedding_contract deploys an embedding "
     "model with os-rerank's handler: set model_dir or hf_model_id (presets are rerankers)"),
])
def test_embedding_contract_mistakes_are_config_errors(tmp_path: Path, deploy: str, message: str) -> None:
    model_dir(tmp_path)
    with pytest.raises(ConfigError) as info:
        write(tmp_path, deploy)
    assert message in str(info.value)
