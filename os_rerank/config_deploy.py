"""The `deploy` section: what `os-rerank endpoint deploy` puts on SageMaker (model, image, instances, autoscaling,
where the archive goes). Only the endpoint commands read it; config.py places it under Config.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from .aws.presets import PRESET_NAMES
from .config_types import NonEmpty
from .config_types import Strict as _Strict

_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")


class AutoscalingConfig(_Strict):
    """Target tracking on SageMakerVariantInvocationsPerInstance (invocations per instance per minute)."""

    min: Annotated[int, Field(ge=1, le=100)] = Field(default=1, description="Fewest instances.")
    max: Annotated[int, Field(ge=1, le=100)] = Field(default=2, description="Most instances.")
    target_invocations_per_instance: Annotated[float, Field(gt=0, le=1_000_000, allow_inf_nan=False)] = Field(
        default=100.0, description="Invocations per instance per minute the policy keeps to.")
    scale_in_cooldown: Annotated[int, Field(ge=0, le=86400)] = Field(
        default=300, description="Seconds after a scale-in before the next.")
    scale_out_cooldown: Annotated[int, Field(ge=0, le=86400)] = Field(
        default=60, description="Seconds after a scale-out before the next.")

    @model_validator(mode="after")
    def _ordered(self) -> AutoscalingConfig:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is larger than max ({self.max})")
        return self


class DeployConfig(_Strict):
    """What `os-rerank endpoint deploy` puts on SageMaker under sagemaker.endpoint_name (see presets.py)."""

    preset: Literal[PRESET_NAMES] | None = Field(  # type: ignore[valid-type]
        default=None, description=(
            "A tested cross-encoder (see \"Presets and contracts\"); set exactly one of preset, hf_model_id and "
            "model_dir."))
    hf_model_id: Annotated[str, Field(pattern=r"^[\w.-]+(/[\w.-]+)?$")] | None = Field(
        default=None, description="Any Hugging Face cross-encoder (org/model), instead of a preset.")
    image_uri: NonEmpty | None = Field(
        default=None, description=(
            "The container image; default: the Hugging Face PyTorch inference image for the region."))
    instance_type: Annotated[str, Field(pattern=r"^ml\.[a-z0-9-]+\.[a-z0-9]+$")] | None = Field(
        default=None, description=(
            "The SageMaker instance type; default: the preset's, else ml.m5.xlarge (ml.g* and ml.p* get the GPU "
            "image)."))
    instance_count: Annotated[int, Field(ge=1, le=100)] = Field(default=1, description="Instances behind the endpoint.")
    execution_role_arn: str | None = Field(
        default=None, description=(
            "The role SageMaker assumes to pull the image and write logs; checked when `endpoint deploy` runs."))
    autoscaling: AutoscalingConfig | None = Field(
        default=None, description="Target tracking on invocations per instance; unset: a fixed instance count.")
    variant_name: Annotated[str, Field(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")] = Field(
        default="AllTraffic", description="The endpoint's production variant.")
    handler: Literal["auto", "stock", "os-rerank"] = Field(
        default="auto", description=(
            "What answers requests: `stock`, the toolkit's zero-code text-classification pipeline; `os-rerank`, our "
            "handler packaged as code/inference.py in model.tar.gz on S3, for every contract; `auto`, os-rerank's "
            "when sagemaker.contract is not the stock container's or model_dir is set (and image_uri is unset)."))
    model_dir: NonEmpty | None = Field(
        default=None, description=(
            "A local model directory (save_pretrained: config, tokenizer, weights or model.onnx) packaged into "
            "model.tar.gz with the handler, relative to the config file; instead of preset / hf_model_id."))
    s3_bucket: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")] | None = Field(
        default=None, description=(
            "Where model.tar.gz goes. Default: the SageMaker default bucket `sagemaker-<region>-<account id>`, created "
            "when missing as the SageMaker SDK does; a bucket named here must exist."))
    s3_prefix: Annotated[str, Field(pattern=r"^[\w!.*'()/-]{1,200}$")] = Field(
        default="os-rerank", description=(
            "Archives go to `<s3_prefix>/<endpoint>/<first 16 hex of their SHA-256>/model.tar.gz`."))
    embedding_contract: str | None = Field(
        default=None, description=(
            "Set: the section deploys an embedding model (model_dir or hf_model_id) with os-rerank's handler (mean "
            "pooling, L2-normalised vectors) answering this embedding contract at sagemaker.endpoint_name; "
            "sagemaker.contract is then not used (the SageMaker model gets OS_RERANK_EMBEDDING_CONTRACT)."))

    @field_validator("embedding_contract")
    @classmethod
    def _embedding_contract(cls, v: str | None) -> str | None:
        from .embedding_contracts import EMBEDDING_CONTRACT_NAMES

        if v is not None and v not in EMBEDDING_CONTRACT_NAMES:
            raise ValueError(f"expected one of {', '.join(EMBEDDING_CONTRACT_NAMES)}, got {v!r}")
        return v

    @field_validator("execution_role_arn")
    @classmethod
    def _role_arn(cls, v: str | None) -> str | None:
        if v is not None and not _ROLE_ARN.match(v):
            raise ValueError(f"expected an IAM role ARN like arn:aws:iam::123456789012:role/NAME, got {v!r}")
        return v

    @model_validator(mode="after")
    def _one_model(self) -> DeployConfig:
        if self.embedding_contract is not None and (self.handler == "stock" or self.preset is not None):
            raise ValueError("embedding_contract deploys an embedding model with os-rerank's handler: set model_dir or "
                             "hf_model_id (presets are rerankers) and handler: os-rerank (or auto)")
        if sum(v is not None for v in (self.preset, self.hf_model_id, self.model_dir)) != 1:
            raise ValueError(f"set exactly one of preset ({', '.join(PRESET_NAMES)}), hf_model_id or model_dir")
        if self.model_dir is not None and self.handler == "stock":
            raise ValueError("model_dir is packaged with os-rerank's handler; set handler: os-rerank (or auto)")
        if self.s3_prefix.startswith("/") or self.s3_prefix.endswith("/") or "//" in self.s3_prefix:
            raise ValueError(f"s3_prefix: {self.s3_prefix!r} must not start or end with / or hold //")
        return self
