"""How ML Commons calls a remote model: pre-process (Painless via the JDK glue), SigV4, HTTP, retries, post-process.

The Painless runs for real in `tests/painless/jvm.py` (`MLCommonsGlue`); this module only moves the bytes between
the glue and the endpoint, with the failure texts of docs/ml-commons.md#failures.
"""

from __future__ import annotations

import ipaddress
import json
import random
import re
import socket
import struct
import time
import urllib.error
import urllib.request
from typing import Any, Protocol
from urllib.parse import urlsplit

from .state import ML, ApiError, ClusterState, illegal_argument, status_exception

REMOTE_SERVICE_ERROR = "Error from remote service: "
THROTTLED = (REMOTE_SERVICE_ERROR + "The request was denied due to remote server throttling. "
             "To change the retry policy and behavior, please update the connector client_config.")
_PLACEHOLDER = re.compile(r"\$\{parameters\.([^}:]+)(?::-([^}]*))?\}")


class Glue(Protocol):
    def preprocess_payload(self, pre_script: str, request_body: str, connector_parameters: dict[str, str],
                           query: str, docs: list[str], *, version: tuple[int, int, int]) -> str: ...

    def postprocess(self, post_script: str, response_text: str, *, version: tuple[int, int, int]) -> list[dict]: ...


def substitute_url(url: str, params: dict[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: params.get(m.group(1), m.group(0)), url)


def escape_json(value: str) -> str:
    """Apache commons-text `StringEscapeUtils.escapeJson` (it also escapes `/`)."""
    return json.dumps(value)[1:-1].replace("/", "\\/")


def _is_json(value: str) -> bool:
    try:
        return isinstance(json.loads(value), (dict, list))
    except ValueError:
        return False


def fill_request_body(template: str, params: dict[str, str]) -> str:
    """escapeRemoteInferenceInputData + StringSubstitutor + validatePayload, for the parameters route.

    docs/ml-commons.md#parameters
    """
    escaped = {k: v if v is None or _is_json(v) else escape_json(v) for k, v in params.items()}

    def fill(m: re.Match[str]) -> str:
        if m.group(1) in escaped:
            return escaped[m.group(1)]
        return m.group(2) if m.group(2) is not None else m.group(0)

    payload = _PLACEHOLDER.sub(fill, template)
    missing = _PLACEHOLDER.findall(payload)
    if missing and escaped.get("skip_validating_missing_parameters") != "true":
        raise illegal_argument(f"Some parameter placeholder not filled in payload: {', '.join(n for n, _ in missing)}")
    try:
        json.loads(payload)
    except ValueError as exc:
        raise illegal_argument(f"Invalid payload: {payload}") from exc
    return payload


def check_trusted_url(state: ClusterState, url: str) -> None:
    """`Matcher.matches()` of the URL against the trusted list (docs/ml-commons.md#trusted-endpoints);
    the ", URL is:" suffix up to 3.1 (Connector.java at 3.1.0.0 has it, 3.2.0.0 not)."""
    regexes = state.setting(ML + "trusted_connector_endpoints_regex") or []
    if isinstance(regexes, str):
        regexes = [regexes]
    if any(re.fullmatch(rx, url) for rx in regexes):
        return
    text = "Connector URL is not matching the trusted connector endpoint regex"
    if state.version < (3, 2, 0):
        text += f", URL is: {url}"
    raise illegal_argument(text)


def _private(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if ip.is_loopback or ip.is_link_local or ip.is_unspecified:
        return True
    if ip.version == 4:
        return any(ip in ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
    return ip in ipaddress.ip_network("fc00::/7") or ip in ipaddress.ip_network("fec0::/10")


def apply_private_ip_rule(state: ClusterState, protocol: str, url: str) -> None:
    """`Remote inference host name has private ip address` per version and protocol.

    docs/ml-commons.md#private-ip-addresses
    """
    version = state.version
    checked = protocol == "http" or (protocol == "aws_sigv4" and version >= (3, 4, 0))
    if not checked:
        return
    if version >= (2, 15, 0) and state.flag(ML + "connector.private_ip_enabled"):
        return
    host = urlsplit(url).hostname or ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return
    if any(_private(a.split("%")[0]) for a in addresses):
        raise illegal_argument(host if version < (2, 13, 0) else f"Remote inference host name has private ip address: "
                                                                   f"{host}")


def java_float(value: Any) -> Any:
    """A number as a Java `float` prints it (shortest decimal that round-trips float32): ModelTensor data and _score."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    packed = struct.pack(">f", float(value))
    as_f32 = struct.unpack(">f", packed)[0]
    for digits in range(1, 10):
        text = f"{as_f32:.{digits}g}"
        if struct.pack(">f", float(text)) == packed:
            return float(text)
    return as_f32


def _float32_tensors(tensors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for tensor in tensors:
        tensor = dict(tensor)
        if not tensor.get("data_type"):
            # ModelTensor.parser drops data without a data_type (docs/ml-commons.md#post-process)
            tensor.pop("data", None)
        elif tensor["data_type"] in ("FLOAT32", "FLOAT16") and isinstance(tensor.get("data"), list):
            tensor["data"] = [java_float(v) for v in tensor["data"]]
        out.append(tensor)
    return out


class RemoteCaller:
    """Runs a connector's predict action against the real endpoint it names."""

    def __init__(self, state: ClusterState, glue: Glue | None, *, timeout_cap: float = 30.0) -> None:
        self.state = state
        self.glue = glue
        self.timeout_cap = timeout_cap
        self.calls: list[dict[str, Any]] = []  # every outgoing call: url, headers, body, status

    @staticmethod
    def _predict_action(connector: dict[str, Any]) -> dict[str, Any]:
        for action in connector.get("actions") or []:
            if action.get("action_type") == "PREDICT":
                return action
        raise illegal_argument("no predict action found")

    def _need_glue(self) -> Glue:
        if self.glue is None:
            raise ApiError(500, "illegal_state_exception", "the test double was started without a Painless glue")
        return self.glue

    def text_similarity(self, connector: dict[str, Any], query: str, docs: list[str]) -> list[dict[str, Any]]:
        action = self._predict_action(connector)
        pre = action.get("pre_process_function")
        if not pre:
            raise illegal_argument("pre_process_function not defined in connector")
        if pre.startswith("connector.pre_process."):
            raise ApiError(500, "illegal_state_exception", f"built-in {pre} is not modelled by the test double")
        glue = self._need_glue()
        try:
            payload = glue.preprocess_payload(pre, action.get("request_body") or "", connector.get("parameters") or {},
                                              query, docs, version=self.state.version)
        except Exception as exc:
            raise _script_error(exc) from exc
        return self._invoke_and_postprocess(connector, action, payload)

    def text_embedding(self, connector: dict[str, Any], docs: list[str]) -> list[list[dict[str, Any]]]:
        """A TEXT_EMBEDDING predict (TextDocsInputDataSet): the script sees only `text_docs`. As
        RemoteConnectorExecutor.calculateChunkSize (2.19.1): with a script of the user's, one call per text, or
        `input_docs_processed_step_size` texts per call when the connector's parameters hold it."""
        action = self._predict_action(connector)
        pre = action.get("pre_process_function")
        if not pre or pre.startswith("connector.pre_process."):
            raise ApiError(500, "illegal_state_exception", "the double models embedding connectors with a script only")
        if not docs:
            raise illegal_argument("empty docs")
        step = int((connector.get("parameters") or {}).get("input_docs_processed_step_size") or 1)
        glue = self._need_glue()
        chunks: list[list[dict[str, Any]]] = []  # one output per endpoint call, in input order
        for start in range(0, len(docs), step):
            try:
                payload = glue.preprocess_payload(pre, action.get("request_body") or "",
                                                  connector.get("parameters") or {}, None, docs[start:start + step],
                                                  version=self.state.version)
            except Exception as exc:
                raise _script_error(exc) from exc
            chunks.append(self._invoke_and_postprocess(connector, action, payload))
        return chunks

    def with_parameters(self, connector: dict[str, Any], params: dict[str, str]) -> list[dict[str, Any]]:
        """`POST /models/<id>/_predict {"parameters": ...}`: the parameters fill `request_body` directly.

        Simplification: a Painless pre-process is not run on this route (the double models text_similarity input).
        """
        action = self._predict_action(connector)
        merged = dict(connector.get("parameters") or {})
        merged.update(params)
        payload = fill_request_body(action.get("request_body") or "", merged)
        return self._invoke_and_postprocess(connector, action, payload)

    def _invoke_and_postprocess(self, connector: dict[str, Any], action: dict[str, Any],
                                payload: str) -> list[dict[str, Any]]:
        response_text = self._invoke(connector, action, payload)
        post = action.get("post_process_function")
        if not post:
            try:
                data = json.loads(response_text)
            except ValueError:
                data = {"response": response_text}
            return [{"name": "response", "dataAsMap": data if isinstance(data, dict) else {"response": data}}]
        if post.startswith("connector.post_process."):
            raise ApiError(500, "illegal_state_exception", f"built-in {post} is not modelled by the test double")
        try:
            tensors = self._need_glue().postprocess(post, response_text, version=self.state.version)
        except Exception as exc:
            raise _script_error(exc) from exc
        return _float32_tensors(tensors)

    def _timeout(self, connector: dict[str, Any]) -> float:
        config = connector.get("client_config") or {}
        version = self.state.version
        value = config.get("read_timeout")
        if value is None or version < (2, 13, 0):
            return self.timeout_cap
        seconds = float(value) / 1000.0 if version < (2, 14, 0) else float(value)
        return min(seconds, self.timeout_cap)

    def _retry_plan(self, connector: dict[str, Any]) -> tuple[int, float, str, float]:
        config = connector.get("client_config") or {}
        if self.state.version < (2, 15, 0):
            return 0, 0.0, "constant", 0.0
        return (int(config.get("max_retry_times", 0)), float(config.get("retry_backoff_millis", 200)) / 1000.0,
                str(config.get("retry_backoff_policy", "constant")), float(config.get("retry_timeout_seconds", 30)))

    def _invoke(self, connector: dict[str, Any], action: dict[str, Any], payload: str) -> str:
        params = connector.get("parameters") or {}
        url = substitute_url(action["url"], params)
        if self.state.version >= (3, 7, 0):  # runtime URL re-validation (docs/ml-commons.md#trusted-endpoints)
            check_trusted_url(self.state, url)
        apply_private_ip_rule(self.state, connector.get("protocol", ""), url)
        max_retries, backoff, policy, budget = self._retry_plan(connector)
        started = time.monotonic()
        attempt = 0
        while True:
            status, headers, text = self._send(connector, action, url, payload)
            if 200 <= status < 300:
                return text
            throttled = status == 400 and headers.get("x-amzn-errortype", "").startswith("ThrottlingException")
            if throttled and self.state.version < (2, 15, 0):
                raise status_exception(status, REMOTE_SERVICE_ERROR + text)
            retryable = throttled or (self.state.version >= (3, 8, 0) and (status == 429 or status >= 500))
            out_of_time = time.monotonic() - started > budget
            if retryable and (max_retries < 0 or attempt < max_retries) and not out_of_time:
                attempt += 1
                time.sleep(_backoff(policy, backoff, attempt))
                continue
            if throttled:
                raise status_exception(status, THROTTLED)
            raise status_exception(status, REMOTE_SERVICE_ERROR + text)

    def _send(self, connector: dict[str, Any], action: dict[str, Any], url: str,
              payload: str) -> tuple[int, dict[str, str], str]:
        headers = {str(k): str(v) for k, v in (action.get("headers") or {}).items()}
        credential = connector.get("credential") or {}
        headers = {k: re.sub(r"\$\{credential\.([^}]+)\}", lambda m: credential.get(m.group(1), ""), v)
                   for k, v in headers.items()}
        if not any(k.lower() == "content-type" for k in headers):
            headers["content-type"] = "application/json"
        data = payload.encode("utf-8")
        method = str(action.get("method", "POST")).upper()
        if connector.get("protocol") == "aws_sigv4":
            headers = _sigv4_headers(connector, method, url, data, headers)
        call: dict[str, Any] = {"url": url, "method": method, "headers": headers, "body": payload, "status": None}
        self.calls.append(call)
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout(connector)) as response:
                call["status"] = response.status
                return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read().decode()
        except urllib.error.HTTPError as exc:
            call["status"] = exc.code
            return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read().decode("utf-8", "replace")
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise status_exception(500, f"Error communicating with remote model: {reason}") from exc


def _backoff(policy: str, base: float, attempt: int) -> float:
    if policy == "exponential_full_jitter":
        return random.uniform(0, base * 2 ** (attempt - 1))
    if policy == "exponential_equal_jitter":
        cap = base * 2 ** (attempt - 1)
        return cap / 2 + random.uniform(0, cap / 2)
    return base


def _sigv4_headers(connector: dict[str, Any], method: str, url: str, data: bytes,
                   headers: dict[str, str]) -> dict[str, str]:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    params = connector.get("parameters") or {}
    credential = connector.get("credential") or {}
    creds = Credentials(credential.get("access_key"), credential.get("secret_key"), credential.get("session_token"))
    region = params.get("region") or credential.get("region")
    service = params.get("service_name") or credential.get("service_name")
    aws_request = AWSRequest(method=method, url=url, data=data, headers=headers)
    SigV4Auth(creds, service, region).add_auth(aws_request)
    return dict(aws_request.headers.items())


def _script_error(exc: Exception) -> ApiError:
    """A glue `ScriptFailure` as OpenSearch reports it: ML Commons' own checks are IllegalArgumentExceptions, a
    failing Painless script is a `script_exception` whose `caused_by` carries the script's exception."""
    if isinstance(exc, ApiError):
        return exc
    message = getattr(exc, "message", None) or str(exc)
    kind = getattr(exc, "kind", "script")
    if kind == "compile":
        return ApiError(400, "script_exception", "compile error",
                        caused_by={"type": "illegal_argument_exception", "reason": message})
    if kind == "script":
        java_name, _, detail = message.partition(": ")
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", java_name).lower() if java_name.isidentifier() else "exception"
        return ApiError(400, "script_exception", "runtime error",
                        caused_by={"type": snake, "reason": detail or message})
    if message.startswith("NullPointerException"):
        return ApiError(500, "null_pointer_exception", message.partition(": ")[2] or None)
    if message.startswith("ClassCastException"):
        return ApiError(500, "class_cast_exception", message.partition(": ")[2] or None)
    return illegal_argument(message)
