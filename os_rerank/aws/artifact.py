"""model.tar.gz on S3 for `endpoint deploy` with os-rerank's handler: the bucket, the key, the upload, the cleanup.

The archive (archive.py) is content-addressed: its key is `<s3_prefix>/<endpoint>/<first 16 hex of its
SHA-256>/model.tar.gz`, and the whole SHA-256 is in the object's metadata (`x-amz-meta-sha256`). So an unchanged
deploy finds the object with HeadObject and uploads nothing, a changed model or handler gets a new key (and so a
new SageMaker model), and `endpoint delete` removes exactly the objects under the endpoint's prefix whose keys
have that shape: the ones os-rerank uploaded. The bucket is deploy.s3_bucket, else the SageMaker default bucket
`sagemaker-<region>-<account id>` (the account from STS), created when missing as the SageMaker SDK's
`default_bucket()` does; a bucket named in the config is never created.

The SageMaker model gets the handler's environment (`handler_environment`): SAGEMAKER_PROGRAM=inference.py and
SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/model/code (what the SageMaker SDK sets for code repacked into model.tar.gz),
OS_RERANK_CONTRACT (the handler's contract; for an embedding model, OS_RERANK_EMBEDDING_CONTRACT from
deploy.embedding_contract instead), and HF_MODEL_ID when no model directory is packaged (the toolkit then downloads
the model from the Hub at start-up, and code/ comes from the archive).
"""

from __future__ import annotations

import base64
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Config
from ..errors import AwsError, ConfigError
from ..events import OnEvent, note
from .archive import ARCHIVE_NAME, ModelArchive, ModelDirError, build_model_archive
from .calls import aws_error, call_aws
from .presets import OS_RERANK, PRESETS, handler_for

SUBMIT_DIRECTORY = "/opt/ml/model/code"
_SHA_META = "sha256"
# boto3's managed transfer: one PutObject up to this size, multipart above (a bge-large archive is ~2 GB).
_MULTIPART_THRESHOLD = 64 * 1024 * 1024


def uses_handler(config: Config) -> bool:
    """Whether `endpoint deploy` packages os-rerank's handler for this config."""
    deploy = config.deploy
    if deploy is None:
        return False
    if deploy.embedding_contract is not None:
        return True  # an embedding model is served by os-rerank's handler only
    return handler_for(deploy.handler, config.sagemaker.contract, model_dir=deploy.model_dir is not None,
                       custom_image=deploy.image_uri is not None) == OS_RERANK


def hf_model_id(config: Config) -> str | None:
    """The Hugging Face model the endpoint serves, or None when a local model directory is packaged."""
    deploy = config.deploy
    if deploy is None or deploy.model_dir is not None:
        return None
    return PRESETS[deploy.preset].hf_model_id if deploy.preset else deploy.hf_model_id


def handler_environment(config: Config) -> dict[str, str]:
    """The SageMaker model's environment for os-rerank's handler."""
    from ..server.inference import CONTRACT_ENV, EMBEDDING_CONTRACT_ENV

    env = {
        "SAGEMAKER_PROGRAM": "inference.py",
        "SAGEMAKER_SUBMIT_DIRECTORY": SUBMIT_DIRECTORY,
        "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
        "SAGEMAKER_REGION": config.sagemaker.region,
    }
    # One handler for both kinds: the variable set tells it which model it serves.
    embedding = config.deploy.embedding_contract if config.deploy is not None else None
    if embedding is not None:
        env[EMBEDDING_CONTRACT_ENV] = embedding
    else:
        env[CONTRACT_ENV] = config.sagemaker.contract
    model_id = hf_model_id(config)
    if model_id is not None:
        env["HF_MODEL_ID"] = model_id
    return env


def artifact_prefix(config: Config) -> str:
    """The S3 folder of this endpoint's archives: `<s3_prefix>/<endpoint name>`."""
    prefix = config.deploy.s3_prefix if config.deploy is not None else "os-rerank"
    return f"{prefix}/{config.sagemaker.name}"


@dataclass(frozen=True)
class Artifact:
    """Where the archive goes, and what it is. `default_bucket`: the SageMaker default, created if missing."""
    bucket: str
    key: str
    sha256: str
    size: int
    members: tuple[str, ...]
    default_bucket: bool
    path: Path

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def _key_pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(re.escape(prefix) + r"/[0-9a-f]{16}/" + re.escape(ARCHIVE_NAME))


def owned_key(config: Config, key: str) -> bool:
    """Whether `key` is an archive os-rerank uploaded for this endpoint."""
    return _key_pattern(artifact_prefix(config)).fullmatch(key) is not None


def parse_s3_url(url: str) -> tuple[str, str] | None:
    """(bucket, key) of an s3:// URL, else None."""
    if not url.startswith("s3://"):
        return None
    bucket, _, key = url[5:].partition("/")
    return (bucket, key) if bucket and key else None


def default_bucket(clients: Any, region: str) -> str:
    """The SageMaker default bucket name, `sagemaker-<region>-<account id>` (one STS GetCallerIdentity)."""
    identity = call_aws("GetCallerIdentity", clients.sts.get_caller_identity)
    return f"sagemaker-{region}-{identity['Account']}"


@contextmanager
def prepared_artifact(config: Config, clients: Any) -> Iterator[Artifact]:
    """Build the archive in a temporary folder and name its S3 place (reads only); the file is gone afterwards."""
    model_dir = config.deploy_model_dir
    if model_dir is not None and not model_dir.is_dir():
        raise ConfigError([f"{config.source.name}: deploy.model_dir: {model_dir} is not a directory"],
                          fix="point deploy.model_dir (relative to the config file) at a save_pretrained() folder")
    with tempfile.TemporaryDirectory(prefix="os-rerank-model-") as tmp:
        try:
            archive: ModelArchive = build_model_archive(model_dir, Path(tmp) / ARCHIVE_NAME)
        except ModelDirError as exc:
            raise ConfigError([f"{config.source.name}: deploy.model_dir: {exc}"],
                              fix="point deploy.model_dir at a save_pretrained() folder") from None
        deploy = config.deploy
        configured = deploy.s3_bucket if deploy is not None else None
        bucket = configured or default_bucket(clients, config.sagemaker.region)
        yield Artifact(bucket=bucket, key=f"{artifact_prefix(config)}/{archive.short_hash}/{ARCHIVE_NAME}",
                       sha256=archive.sha256, size=archive.size, members=archive.members,
                       default_bucket=configured is None, path=archive.path)


def _exists(op: str, fn: Callable[..., Any], **kwargs: Any) -> dict[str, Any] | None:
    """fn(**kwargs), or None on a 404 (HeadBucket and HeadObject answer a bare 404)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return dict(fn(**kwargs))
    except ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey", "NoSuchBucket", "NotFound"):
            return None
        raise aws_error(op, exc) from None
    except BotoCoreError as exc:
        raise aws_error(op, exc) from None


def artifact_writes(clients: Any, artifact: Artifact) -> list[tuple[str, str]]:
    """(operation, reason) of the writes `ensure_artifact` would send; reads only."""
    s3 = clients.s3
    if _exists("HeadBucket", s3.head_bucket, Bucket=artifact.bucket) is None:
        if not artifact.default_bucket:
            raise AwsError(f"S3 bucket {artifact.bucket} (deploy.s3_bucket) does not exist or is not yours",
                           fix="create it in the endpoint's region, or leave deploy.s3_bucket out to use the "
                           "SageMaker default bucket")
        return [("CreateBucket", f"the SageMaker default bucket {artifact.bucket} does not exist"),
                ("PutObject", f"{artifact.url} ({artifact.size} bytes) is not there")]
    head = _exists("HeadObject", s3.head_object, Bucket=artifact.bucket, Key=artifact.key)
    if head is None:
        return [("PutObject", f"{artifact.url} ({artifact.size} bytes) is not there")]
    if (head.get("Metadata") or {}).get(_SHA_META) != artifact.sha256:
        return [("PutObject", f"{artifact.url} holds other bytes (sha256 differs)")]
    return []


def ensure_artifact(clients: Any, artifact: Artifact, region: str, on_event: OnEvent) -> None:
    """Upload the archive unless the same bytes are already at its key (creating the default bucket if missing)."""
    writes = artifact_writes(clients, artifact)
    if not writes:
        on_event(note(f"{artifact.url} exists with the same sha256; not uploaded"))
        return
    s3 = clients.s3
    if writes[0][0] == "CreateBucket":
        on_event(note(f"creating S3 bucket {artifact.bucket}"))
        # us-east-1 refuses a LocationConstraint naming itself; every other region needs one.
        extra: dict[str, Any] = {}
        if region != "us-east-1":
            extra["CreateBucketConfiguration"] = {"LocationConstraint": region}
        call_aws("CreateBucket", s3.create_bucket, Bucket=artifact.bucket, **extra)
    on_event(note(f"uploading {artifact.url} ({artifact.size} bytes, sha256 {artifact.sha256[:16]})"))
    from boto3.s3.transfer import TransferConfig
    from botocore.exceptions import BotoCoreError, ClientError

    digest = base64.b64encode(bytes.fromhex(artifact.sha256)).decode()
    try:
        if artifact.size <= _MULTIPART_THRESHOLD:
            # S3 checks the SHA-256 of what it receives against the archive's: a torn upload is refused.
            with artifact.path.open("rb") as body:
                s3.put_object(Bucket=artifact.bucket, Key=artifact.key, Body=body, ChecksumSHA256=digest,
                              ContentType="application/gzip", Metadata={_SHA_META: artifact.sha256})
        else:
            s3.upload_file(str(artifact.path), artifact.bucket, artifact.key,
                           ExtraArgs={"ContentType": "application/gzip", "Metadata": {_SHA_META: artifact.sha256}},
                           Config=TransferConfig(multipart_threshold=_MULTIPART_THRESHOLD))
    except (ClientError, BotoCoreError) as exc:
        raise aws_error("PutObject", exc) from None


def delete_artifact(clients: Any, url: str, on_event: OnEvent) -> bool:
    """Delete one archive by its s3:// URL; whether it was there."""
    where = parse_s3_url(url)
    if where is None:
        return False
    bucket, key = where
    if _exists("HeadObject", clients.s3.head_object, Bucket=bucket, Key=key) is None:
        return False
    call_aws("DeleteObject", clients.s3.delete_object, Bucket=bucket, Key=key)
    on_event(note(f"deleted {url}"))
    return True


def delete_artifacts(config: Config, clients: Any, on_event: OnEvent) -> list[str]:
    """Delete every archive os-rerank uploaded for this endpoint (in the configured or default bucket)."""
    if config.deploy is None:
        return []
    bucket = config.deploy.s3_bucket or default_bucket(clients, config.sagemaker.region)
    s3 = clients.s3
    if _exists("HeadBucket", s3.head_bucket, Bucket=bucket) is None:
        return []
    deleted = []
    prefix = artifact_prefix(config) + "/"
    token: dict[str, Any] = {}
    while True:
        page = call_aws("ListObjectsV2", s3.list_objects_v2, Bucket=bucket, Prefix=prefix, **token)
        for item in page.get("Contents") or []:
            key = str(item["Key"])
            if owned_key(config, key):
                call_aws("DeleteObject", s3.delete_object, Bucket=bucket, Key=key)
                deleted.append(f"s3://{bucket}/{key}")
                on_event(note(f"deleted s3://{bucket}/{key}"))
        if not page.get("IsTruncated"):
            return deleted
        token = {"ContinuationToken": str(page["NextContinuationToken"])}
