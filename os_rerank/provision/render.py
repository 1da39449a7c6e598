"""Rendering: Jinja2 over templates/ and painless/ -> the exact request bodies os-rerank sends. Pure.

`render` (the offline mode) and `apply` call the same functions, so what `os-rerank render` prints is, byte for
byte, what `setup` sends (credentials aside, which render shows as ***).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from .. import mlcommons as ml
from ..config import Config
from ..contracts import get_contract
from ..errors import RenderError
from ..resources import read_painless, resource_dir, script_as_sent
from ..wire import KNOWN_AFTER_APPLY, Ref, Secret, dumps

# The newest ML Commons line os-rerank knows; render defaults to it.
NEWEST_VERSION = (3, 8, 0)
MIN_VERSION = (2, 12, 0)
REDACTED = "***"
# Placeholders (wire.py) cross a template as this prefix + the context key, and come back as objects: only a whole
# JSON string equal to such a token is one, and the nonce makes sure no user text can be.
_TOKEN = f"os-rerank-placeholder-{secrets.token_hex(16)}:"

Version = tuple[int, int, int]


@dataclass(frozen=True)
class Rendered:
    """One request os-rerank sends: method, path and the body text exactly as it goes on the wire."""

    what: str
    method: str
    path: str
    body: str
    content_type: str = "application/json"


def parse_version(text: str) -> Version:
    """(major, minor, patch) from "2.13.0" or "3.1"; RenderError on anything else."""
    parts = text.strip().split("-")[0].split(".")
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        raise RenderError(f"not a version: {text!r}", fix="write it like 2.19.0") from None
    if not 1 <= len(numbers) <= 3:
        raise RenderError(f"not a version: {text!r}", fix="write it like 2.19.0")
    numbers += [0] * (3 - len(numbers))
    return numbers[0], numbers[1], numbers[2]


def format_version(version: Version) -> str:
    return ".".join(str(n) for n in version)


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(resource_dir("templates"))),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
    )
    env.filters["json"] = lambda value: json.dumps(value, ensure_ascii=False)
    return env


def _render_template(name: str, **context: Any) -> Any:
    """The JSON value template `name` produces; RenderError with the template's name if it is not valid JSON.

    A placeholder (Ref, Secret) passed in `context` is in the value where the template put it, as the same object.
    """
    tokens: dict[str, Any] = {}
    for key, value in context.items():
        if isinstance(value, (Ref, Secret)):
            tokens[_TOKEN + key] = value
            context[key] = _TOKEN + key
    try:
        text = _environment().get_template(name).render(**context)
    except jinja2.TemplateError as exc:
        raise RenderError(f"templates/{name}: {exc}") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RenderError(f"templates/{name}:{exc.lineno}: rendered text is not JSON: {exc.msg}") from None
    return _restore(value, tokens) if tokens else value


def _restore(value: Any, tokens: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        return tokens.get(value, value)
    if isinstance(value, dict):
        return {k: _restore(v, tokens) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore(v, tokens) for v in value]
    return value


def client_config_for(config: Config, version: Version) -> dict[str, Any] | None:
    """The connector's client_config for ML Commons `version`: none before 2.13, ms in 2.13, seconds after."""
    cc = config.connector.client_config
    if version < (2, 13, 0):
        return None  # 2.12 ignores the field; sending nothing keeps the stored connector equal to the sent one
    # 2.13 reads timeouts as milliseconds, 2.14+ as seconds (docs/ml-commons.md#client-config)
    scale = 1000 if version < (2, 14, 0) else 1
    out: dict[str, Any] = {
        "max_connection": cc.max_connection,
        "connection_timeout": cc.connection_timeout * scale,
        "read_timeout": cc.read_timeout * scale,
    }
    if version >= (2, 15, 0):
        out.update(
            max_retry_times=cc.max_retry_times,
            retry_backoff_policy=cc.retry_backoff_policy,
            retry_backoff_millis=cc.retry_backoff_millis,
            retry_timeout_seconds=cc.retry_timeout_seconds,
        )
    return out


def credential_placeholder(config: Config) -> dict[str, str]:
    """The connector credential as a plan holds it: a Secret apply fills in (shown ***), or a role ARN as is."""
    shown = redacted_credential(config)
    return shown if config.connector.role_arn else Secret("credential", shown)


def redacted_credential(config: Config, credential: Mapping[str, str] | None = None) -> dict[str, str]:
    """The connector credential as render shows it: every secret value ***, a role ARN as is."""
    if config.connector.role_arn:
        return {"roleArn": config.connector.role_arn}
    keys = list(credential) if credential else ["access_key", "secret_key"]
    return {k: REDACTED for k in keys}


def connector_body(config: Config, *, version: Version, credential: Mapping[str, str]) -> dict[str, Any]:
    """The create/update connector body for `config` on ML Commons `version`."""
    contract = get_contract(config.sagemaker.contract)
    try:
        pre = script_as_sent(read_painless(contract.pre_process_file))  # see resources.ESCAPE_MARKER: why
        post = script_as_sent(read_painless(contract.post_process_file))
    except OSError as exc:
        raise RenderError(f"painless/: cannot read script: {exc}") from None
    body = _render_template(
        "connector.json.j2",
        connector=config.connector,
        sagemaker=config.sagemaker,
        contract=contract,
        url=config.sagemaker.connector_url,
        credential=credential if isinstance(credential, Secret) else dict(credential),
        client_config=client_config_for(config, version),
        pre_process=pre,
        post_process=post,
    )
    assert isinstance(body, dict)
    return body


def model_group_body(config: Config) -> dict[str, Any]:
    body = _render_template("model_group.json.j2", model=config.model)
    assert isinstance(body, dict)
    return body


def model_group_access_body(config: Config) -> dict[str, Any]:
    """The body that changes a model group's access: ML Commons takes backend_roles only for restricted."""
    access = config.model.access
    assert access is not None
    body: dict[str, Any] = {"access_mode": access.mode}
    if access.backend_roles:
        body["backend_roles"] = list(access.backend_roles)
    return body


def model_body(config: Config, *, connector_id: str, model_group_id: str | None) -> dict[str, Any]:
    body = _render_template(
        "model.json.j2", model=config.model, connector_id=connector_id, model_group_id=model_group_id
    )
    assert isinstance(body, dict)
    return body


def index_body(config: Config) -> dict[str, Any]:
    body = _render_template("index.json.j2", index=config.index)
    assert isinstance(body, dict)
    return body


def pipeline_body(config: Config, *, model_id: str) -> dict[str, Any]:
    body = _render_template("pipeline.json.j2", pipeline=config.pipeline, model_id=model_id)
    assert isinstance(body, dict)
    return body


def load_documents(config: Config) -> list[dict[str, Any]]:
    """The sample documents: the configured JSONL file, else the tutorial's four passages. Each has an "id".

    Checked as OpenSearch will take them (documents.py): what `validate` accepts is what `setup` can index.
    """
    from ..documents import parse_documents, read_lines

    path = config.documents_path
    if path is None:
        path = Path(__file__).resolve().parent.parent / "data" / "sample_documents.jsonl"
        shown = "sample_documents.jsonl"
    else:
        shown = str(config.index.documents)
    lines = read_lines(path, "documents", shown)
    return parse_documents(lines, shown, fields=config.index.fields, required=config.pipeline.document_fields)


def bulk_body(config: Config, documents: list[dict[str, Any]]) -> str:
    """The _bulk NDJSON that loads `documents` into the test index under their ids (so reloading is idempotent)."""
    lines = []
    for doc in documents:
        source = {k: v for k, v in doc.items() if k != "id"}
        lines.append(json.dumps({"index": {"_index": config.index.name, "_id": doc["id"]}}, ensure_ascii=False))
        lines.append(json.dumps(source, ensure_ascii=False))
    return "\n".join(lines) + "\n"


RENDER_TARGETS = ("connector", "model", "index", "pipeline", "all")


def render_requests(
    config: Config,
    *,
    what: str = "all",
    version: Version = NEWEST_VERSION,
    credential: Mapping[str, str] | None = None,
    connector_id: str = KNOWN_AFTER_APPLY,
    model_group_id: str | None = KNOWN_AFTER_APPLY,
    model_id: str = KNOWN_AFTER_APPLY,
) -> list[Rendered]:
    """The requests `setup` sends to create each resource, in order; `what` picks one kind or all."""
    if what not in RENDER_TARGETS:
        raise RenderError(f"--what must be one of {', '.join(RENDER_TARGETS)}, not {what!r}")
    shown_credential = dict(credential) if credential is not None else redacted_credential(config)
    out: list[Rendered] = []
    if what in ("connector", "all"):
        body = connector_body(config, version=version, credential=shown_credential)
        out.append(Rendered("connector", "POST", ml.create_path(ml.CONNECTORS), dumps(body)))
    if what in ("model", "all"):
        if config.model.group:
            out.append(Rendered("model_group", "POST", ml.create_path(ml.MODEL_GROUPS),
                                dumps(model_group_body(config))))
        group = model_group_id if config.model.group else None
        out.append(Rendered("model", "POST", ml.create_path(ml.MODELS),
                            dumps(model_body(config, connector_id=connector_id, model_group_id=group))))
    if what in ("index", "all"):
        out.append(Rendered("index", "PUT", f"/{config.index.name}", dumps(index_body(config))))
        out.append(Rendered("documents", "POST", "/_bulk?refresh=true", bulk_body(config, load_documents(config)),
                            content_type="application/x-ndjson"))
    if what in ("pipeline", "all"):
        out.append(Rendered("pipeline", "PUT", f"/_search/pipeline/{config.pipeline.name}",
                            dumps(pipeline_body(config, model_id=model_id))))
    return out
