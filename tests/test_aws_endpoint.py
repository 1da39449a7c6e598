"""`endpoint deploy / status / delete` against moto's SageMaker and Application Auto Scaling (real boto3 above it).

moto makes endpoints InService at once, so the polling loop is also tested with a describe sequence injected at
botocore's `before-call` hook (Creating -> InService, Creating -> Failed). moto 5.2 does not implement
UpdateEndpoint; the `moto_update_endpoint` fixture adds it to moto's backend (switch the endpoint's config), so an
update still runs through boto3's serialisation and moto's HTTP layer.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.unit  # layer 1 of the suite (README "Tests")

boto3 = pytest.importorskip("boto3", reason="boto3 is needed for the AWS side")
moto = pytest.importorskip("moto", reason="moto[sagemaker] is needed for the AWS side (pip install -e '.[test]')")

from moto import mock_aws  # noqa: E402

from os_rerank.aws import endpoint as aws_endpoint  # noqa: E402
from os_rerank.aws.endpoint import AwsClients, default_image_uri, deploy_endpoint, wait_for_endpoint  # noqa: E402
from os_rerank.config import load_config  # noqa: E402
from os_rerank.errors import AwsError, ConfigError  # noqa: E402
from tests.support.aws import ROLE  # noqa: E402

REGION = "us-west-2"
ENDPOINT = "os-rerank-ce"


def write_config(tmp_path: Path, deploy: str | None = None, *, contract: str = "hf-text-classification") -> Path:
    deploy = (
        deploy
        if deploy is not None
        else f"deploy:\n  preset: ms-marco-minilm-l6\n  execution_role_arn: {ROLE}\n"
    )
    path = tmp_path / "config.yaml"
    path.write_text(
        f"sagemaker:\n  region: {REGION}\n  endpoint_name: {ENDPOINT}\n  contract: {contract}\n{deploy}",
        encoding="utf-8",
    )
    return path


def load(tmp_path: Path, deploy: str | None = None, **kwargs: Any) -> Any:
    return load_config(write_config(tmp_path, deploy, **kwargs), env={})


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        yield


@pytest.fixture
def clients(aws: None) -> AwsClients:
    return AwsClients(boto3.client("sagemaker", region_name=REGION),
                      boto3.client("application-autoscaling", region_name=REGION))


def no_sleep(_: float) -> None:
    pass


# --- the image URI -----------------------------------------------------------------------------------------------


def test_default_image_uri_cpu_gpu_and_regions() -> None:
    assert default_image_uri("us-west-2", "ml.m5.xlarge") == (
        "763104351884.dkr.ecr.us-west-2.amazonaws.com/huggingface-pytorch-inference:"
        "2.1.0-transformers4.37.0-cpu-py310-ubuntu22.04"
    )
    assert default_image_uri("eu-west-1", "ml.g5.xlarge") == (
        "763104351884.dkr.ecr.eu-west-1.amazonaws.com/huggingface-pytorch-inference:"
        "2.1.0-transformers4.37.0-gpu-py310-cu118-ubuntu20.04"
    )
    assert default_image_uri("me-south-1", "ml.c5.xlarge").startswith("217643126080.dkr.ecr.me-south-1.amazonaws.com/")
    assert default_image_uri("cn-north-1", "ml.m5.large").startswith(
        "727897471807.dkr.ecr.cn-north-1.amazonaws.com.cn/huggingface-pytorch-inference:"
    )
    with pytest.raises(ConfigError, match="Neuron"):
        default_image_uri("us-east-1", "ml.inf2.xlarge")


def test_spec_names_are_content_hashes(tmp_path: Path) -> None:
    spec = aws_endpoint.endpoint_spec(load(tmp_path))
    assert spec.environment == {"HF_MODEL_ID": "cross-encoder/ms-marco-MiniLM-L-6-v2", "HF_TASK": "text-classification"}
    assert spec.instance_type == "ml.m5.xlarge"
    assert spec.model_name.startswith(f"{ENDPOINT}-") and len(spec.model_name) == len(ENDPOINT) + 9
    assert spec.config_name != spec.model_name
    again = aws_endpoint.endpoint_spec(load(tmp_path))
    assert (again.model_name, again.config_name) == (spec.model_name, spec.config_name)
    bigger = aws_endpoint.endpoint_spec(
        load(tmp_path, f"deploy:\n  preset: ms-marco-minilm-l6\n  execution_role_arn: {ROLE}\n"
                       "  instance_type: ml.c5.2xlarge\n")
    )
    assert bigger.model_name == spec.model_name  # same image and model: only the endpoint config changes
    assert bigger.config_name != spec.config_name


# --- config errors -------------------------------------------------------------------------------------------------


def test_missing_role_is_a_clear_error(tmp_path: Path) -> None:
    config = load(tmp_path, "deploy:\n  preset: bge-reranker-base\n")
    with pytest.raises(ConfigError) as info:
        aws_endpoint.endpoint_spec(config)
    assert "deploy.execution_role_arn: field required" in info.value.message
    assert "sagemaker.amazonaws.com" in (info.value.fix or "")


def test_malformed_role_is_refused_at_load(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, "deploy:\n  preset: bge-reranker-base\n  execution_role_arn: sagemaker-role\n")
    assert "deploy.execution_role_arn: expected an IAM role ARN" in info.value.message
    assert "config.yaml:7" in info.value.message


def test_preset_and_model_id_are_exclusive(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="exactly one of preset"):
        load(tmp_path, f"deploy:\n  execution_role_arn: {ROLE}\n")
    with pytest.raises(ConfigError, match="deploy.preset: must be one of"):
        load(tmp_path, f"deploy:\n  preset: nope\n  execution_role_arn: {ROLE}\n")


def test_no_deploy_section(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="deploy: section missing"):
        aws_endpoint.endpoint_spec(load(tmp_path, ""))


def test_contract_disagreeing_with_the_stock_container_warns(tmp_path: Path) -> None:
    deploy = f"deploy:\n  preset: bge-reranker-large\n  execution_role_arn: {ROLE}\n  handler: stock\n"
    spec = aws_endpoint.endpoint_spec(load(tmp_path, deploy, contract="query-documents-topk"))
    assert len(spec.warnings) == 1
    assert "preset 'bge-reranker-large'" in spec.warnings[0] and "Bedrock samples notebook" in spec.warnings[0]
    assert "deploy.handler: os-rerank" in spec.warnings[0]
    assert aws_endpoint.endpoint_spec(load(tmp_path)).warnings == ()
    # handler: auto packages os-rerank's handler for that contract, which speaks it: nothing to warn about
    auto = aws_endpoint.endpoint_spec(load(tmp_path, deploy.replace("stock", "auto"), contract="query-documents-topk"))
    assert auto.handler == "os-rerank" and auto.warnings == ()


# --- deploy against moto -------------------------------------------------------------------------------------------


def test_deploy_creates_model_config_endpoint_then_reuses_it(tmp_path: Path, clients: AwsClients) -> None:
    config = load(tmp_path)
    events: list[str] = []
    first = deploy_endpoint(config, clients, on_event=lambda event: events.append(event.line()), sleep=no_sleep)
    assert first.outcome == "created" and first.status == "InService"
    assert first.writes == ("CreateModel", "CreateEndpointConfig", "CreateEndpoint")
    assert any(e.startswith(f"endpoint {ENDPOINT}: InService") for e in events)

    sm = clients.sagemaker
    model = sm.describe_model(ModelName=first.model_name)
    assert model["PrimaryContainer"]["Image"] == default_image_uri(REGION, "ml.m5.xlarge")
    assert model["PrimaryContainer"]["Environment"]["HF_MODEL_ID"] == "cross-encoder/ms-marco-MiniLM-L-6-v2"
    assert model["ExecutionRoleArn"] == ROLE
    variant = sm.describe_endpoint_config(EndpointConfigName=first.config_name)["ProductionVariants"][0]
    assert (variant["InstanceType"], variant["InitialInstanceCount"], variant["ModelName"]) == (
        "ml.m5.xlarge", 1, first.model_name)

    before = len(clients.calls)
    second = deploy_endpoint(load(tmp_path), clients, sleep=no_sleep)
    assert second.outcome == "unchanged"
    assert second.writes == ()
    assert clients.calls[before:] == ["DescribeEndpoint", "DescribeEndpointConfig", "DescribeModel"]


def test_changed_instance_type_updates_through_a_new_config(
    tmp_path: Path, clients: AwsClients, moto_update_endpoint: None
) -> None:
    first = deploy_endpoint(load(tmp_path), clients, sleep=no_sleep)
    changed = load(tmp_path, f"deploy:\n  preset: ms-marco-minilm-l6\n  execution_role_arn: {ROLE}\n"
                             "  instance_type: ml.c5.2xlarge\n  instance_count: 2\n")
    result = deploy_endpoint(changed, clients, sleep=no_sleep)
    assert result.outcome == "updated"
    assert result.config_name != first.config_name and result.model_name == first.model_name
    assert result.writes == ("CreateEndpointConfig", "UpdateEndpoint", "DeleteEndpointConfig")
    assert "instance type ml.m5.xlarge -> ml.c5.2xlarge" in result.changes
    sm = clients.sagemaker
    assert sm.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"] == result.config_name
    sm.describe_model(ModelName=first.model_name)  # still used: kept
    with pytest.raises(sm.exceptions.ClientError):
        sm.describe_endpoint_config(EndpointConfigName=first.config_name)
    assert deploy_endpoint(changed, clients, sleep=no_sleep).writes == ()


def test_changed_model_updates_with_a_new_model(
    tmp_path: Path, clients: AwsClients, moto_update_endpoint: None
) -> None:
    first = deploy_endpoint(load(tmp_path), clients, sleep=no_sleep)
    korean = load(tmp_path, f"deploy:\n  preset: ko-reranker\n  instance_type: ml.m5.xlarge\n"
                            f"  execution_role_arn: {ROLE}\n")
    result = deploy_endpoint(korean, clients, sleep=no_sleep)
    assert result.outcome == "updated"
    assert result.writes == ("CreateModel", "CreateEndpointConfig", "UpdateEndpoint", "DeleteEndpointConfig",
                             "DeleteModel")
    assert any("Dongjin-kr/ko-reranker" in c for c in result.changes)
    with pytest.raises(clients.sagemaker.exceptions.ClientError):
        clients.sagemaker.describe_model(ModelName=first.model_name)


def test_autoscaling_is_registered_once(tmp_path: Path, clients: AwsClients) -> None:
    deploy = (f"deploy:\n  preset: ms-marco-minilm-l6\n  execution_role_arn: {ROLE}\n"
              "  autoscaling:\n    min: 1\n    max: 4\n    target_invocations_per_instance: 250\n")
    result = deploy_endpoint(load(tmp_path, deploy), clients, sleep=no_sleep)
    assert result.writes[-2:] == ("RegisterScalableTarget", "PutScalingPolicy")
    aas = clients.autoscaling
    target = aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"][0]
    assert target["ResourceId"] == f"endpoint/{ENDPOINT}/variant/AllTraffic"
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 4)
    policy = aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"][0]
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["TargetValue"] == 250.0
    assert tracking["PredefinedMetricSpecification"]["PredefinedMetricType"] == "SageMakerVariantInvocationsPerInstance"
    assert deploy_endpoint(load(tmp_path, deploy), clients, sleep=no_sleep).writes == ()
    wider = deploy.replace("max: 4", "max: 6")
    assert deploy_endpoint(load(tmp_path, wider), clients, sleep=no_sleep).writes == ("RegisterScalableTarget",)
    status = aws_endpoint.endpoint_status(load(tmp_path, wider), clients)
    assert status["autoscaling"]["max"] == 6 and status["autoscaling"]["target"] == 250.0


def test_status_and_delete(tmp_path: Path, clients: AwsClients) -> None:
    config = load(tmp_path, f"deploy:\n  preset: ms-marco-minilm-l6\n  execution_role_arn: {ROLE}\n"
                            "  autoscaling: {min: 1, max: 2}\n")
    assert aws_endpoint.endpoint_status(config, clients)["status"] == "missing"
    result = deploy_endpoint(config, clients, sleep=no_sleep)
    status = aws_endpoint.endpoint_status(config, clients)
    assert status["status"] == "InService"
    assert status["model"] == result.model_name and status["endpoint_config"] == result.config_name
    assert status["hf_model_id"] == "cross-encoder/ms-marco-MiniLM-L-6-v2"
    assert (status["instance_type"], status["instance_count"]) == ("ml.m5.xlarge", 1)
    assert status["differences_from_config"] == []

    deleted = aws_endpoint.delete_endpoint(config, clients)
    assert deleted.deleted == (
        f"autoscaling endpoint/{ENDPOINT}/variant/AllTraffic",
        f"endpoint {ENDPOINT}",
        f"endpoint config {result.config_name}",
        f"model {result.model_name}",
    )
    assert clients.sagemaker.list_models()["Models"] == []
    assert clients.autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []
    again = aws_endpoint.delete_endpoint(config, clients)  # tolerant of what is already gone
    assert again.deleted == ()
    assert f"endpoint {ENDPOINT}" in again.missing


def test_delete_tolerates_a_missing_model(tmp_path: Path, clients: AwsClients) -> None:
    config = load(tmp_path)
    result = deploy_endpoint(config, clients, sleep=no_sleep)
    clients.sagemaker.delete_model(ModelName=result.model_name)
    deleted = aws_endpoint.delete_endpoint(config, clients)
    assert f"endpoint {ENDPOINT}" in deleted.deleted
    assert f"model {result.model_name}" in deleted.missing


# --- failures injected at botocore's before-call hook ------------------------------------------------------------


def inject(clients: AwsClients, operation: str, responses: list[dict[str, Any]]) -> None:
    """Answer `operation` from `responses` (in order, the last repeating) instead of moto."""

    def answer(**_: Any) -> tuple[Any, dict[str, Any]]:
        body = responses.pop(0) if len(responses) > 1 else responses[0]
        status = 400 if "Error" in body else 200
        return type("R", (), {"status_code": status, "headers": {}})(), body

    clients.sagemaker.meta.events.register_first(f"before-call.sagemaker.{operation}", answer)


def test_wait_polls_until_in_service(clients: AwsClients) -> None:
    inject(clients, "DescribeEndpoint", [{"EndpointStatus": "Creating"}, {"EndpointStatus": "Creating"},
                                         {"EndpointStatus": "InService", "EndpointName": ENDPOINT}])
    events: list[str] = []
    sleeps: list[float] = []
    clock = iter(range(0, 1000, 30))
    described = wait_for_endpoint(clients, ENDPOINT, on_event=lambda event: events.append(event.line()),
                                  sleep=sleeps.append, clock=lambda: float(next(clock)), poll=15)
    assert described["EndpointStatus"] == "InService"
    assert events == [f"endpoint {ENDPOINT}: Creating (30s)", f"endpoint {ENDPOINT}: Creating (1m00s)",
                      f"endpoint {ENDPOINT}: InService (1m30s)"]
    assert sleeps == [15, 15]


def test_wait_reports_the_failure_reason(clients: AwsClients) -> None:
    reason = "The primary container for production variant AllTraffic did not pass the ping health check."
    inject(clients, "DescribeEndpoint", [{"EndpointStatus": "Creating"},
                                         {"EndpointStatus": "Failed", "FailureReason": reason}])
    with pytest.raises(AwsError) as info:
        wait_for_endpoint(clients, ENDPOINT, sleep=no_sleep)
    assert info.value.message == f"endpoint {ENDPOINT} is Failed: {reason}"
    assert "CloudWatch" in (info.value.fix or "")


def test_wait_times_out_with_a_clear_error(clients: AwsClients) -> None:
    inject(clients, "DescribeEndpoint", [{"EndpointStatus": "Creating"}])
    clock = iter(range(0, 10000, 60))
    with pytest.raises(AwsError, match=r"still Creating after 10m00s") as info:
        wait_for_endpoint(clients, ENDPOINT, sleep=no_sleep, clock=lambda: float(next(clock)), timeout=600)
    assert "--timeout" in (info.value.fix or "")


def test_role_sagemaker_cannot_assume(tmp_path: Path, clients: AwsClients) -> None:
    message = (f"Could not assume role {ROLE}. Please ensure that the role exists and allows principal "
               "'sagemaker.amazonaws.com' to assume the role.")
    inject(clients, "CreateModel", [{"Error": {"Code": "ValidationException", "Message": message}}])
    with pytest.raises(AwsError) as info:
        deploy_endpoint(load(tmp_path), clients, sleep=no_sleep)
    assert info.value.message.startswith(f"CreateModel: SageMaker cannot assume the execution role {ROLE}")
    assert "trust policy" in (info.value.fix or "")
    assert "CreateEndpoint" not in clients.calls


def test_missing_pass_role_permission(tmp_path: Path, clients: AwsClients) -> None:
    message = (f"User: arn:aws:iam::123456789012:user/dev is not authorized to perform: iam:PassRole on resource: "
               f"{ROLE}")
    inject(clients, "CreateModel", [{"Error": {"Code": "AccessDeniedException", "Message": message}}])
    with pytest.raises(AwsError) as info:
        deploy_endpoint(load(tmp_path), clients, sleep=no_sleep)
    assert "iam:PassRole" in (info.value.fix or "")


def test_failed_endpoint_is_recreated(tmp_path: Path, clients: AwsClients) -> None:
    config = load(tmp_path)
    deploy_endpoint(config, clients, sleep=no_sleep)
    failed = {"EndpointName": ENDPOINT, "EndpointStatus": "Failed", "FailureReason": "image not found",
              "EndpointConfigName": "x"}
    # Failed on the first read; moto answers every later DescribeEndpoint (gone after the delete, then InService).
    calls = {"n": 0}

    def once(**_: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            return type("R", (), {"status_code": 200, "headers": {}})(), failed
        return None

    clients.sagemaker.meta.events.register_first("before-call.sagemaker.DescribeEndpoint", once)
    events: list[str] = []
    result = deploy_endpoint(config, clients, on_event=lambda event: events.append(event.line()), sleep=no_sleep)
    assert result.outcome == "recreated"
    assert result.writes[0] == "DeleteEndpoint" and result.writes[-1] == "CreateEndpoint"
    assert any("image not found" in e for e in events)


def test_the_commented_example_loads_when_uncommented(tmp_path: Path) -> None:
    example = (Path(__file__).resolve().parent.parent / "config.example.yaml").read_text(encoding="utf-8")
    block = example[example.index("# deploy:"):].split("\n\n")[0]  # the deploy block, up to the next section
    lines = [line[2:] for line in block.splitlines() if line.startswith("# ") and not line.startswith("#   # ")]
    path = tmp_path / "config.yaml"
    path.write_text(example + "\n" + "\n".join(lines) + "\n", encoding="utf-8")
    config = load_config(path, env={})
    assert config.deploy is not None and config.deploy.preset == "ms-marco-minilm-l6"
    assert config.deploy.autoscaling is not None and config.deploy.autoscaling.max == 4
    assert aws_endpoint.endpoint_spec(config).image_uri == default_image_uri("us-west-2", "ml.m5.xlarge")


def test_deregistering_a_missing_scalable_target_is_tolerated(tmp_path: Path, clients: AwsClients) -> None:
    spec = aws_endpoint.endpoint_spec(load(tmp_path))
    gone = aws_endpoint.call_aws("DeregisterScalableTarget", clients.autoscaling.deregister_scalable_target,
                                 missing_ok=True, ServiceNamespace="sagemaker", ResourceId=spec.resource_id,
                                 ScalableDimension="sagemaker:variant:DesiredInstanceCount")
    assert gone is None


def test_update_deregisters_autoscaling_around_it(
    tmp_path: Path, clients: AwsClients, moto_update_endpoint: None
) -> None:
    deploy = (f"deploy:\n  preset: ms-marco-minilm-l6\n  execution_role_arn: {ROLE}\n"
              "  autoscaling: {min: 1, max: 3}\n")
    deploy_endpoint(load(tmp_path, deploy), clients, sleep=no_sleep)
    bigger = deploy + "  instance_type: ml.c5.2xlarge\n"
    result = deploy_endpoint(load(tmp_path, bigger), clients, sleep=no_sleep)
    assert result.writes == ("CreateEndpointConfig", "DeregisterScalableTarget", "UpdateEndpoint",
                             "DeleteEndpointConfig", "RegisterScalableTarget", "PutScalingPolicy")
    targets = clients.autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert [(t["MinCapacity"], t["MaxCapacity"]) for t in targets] == [(1, 3)]
