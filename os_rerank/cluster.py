"""A thin wrapper over opensearch-py: auth, TLS, retries, one error type, and a record of every call.

Every request os-rerank makes to OpenSearch goes through `Cluster.request`, which
- sends the body text exactly as given (so `render` output and what is sent are the same bytes),
- records `(method, path, status)` so tests and `setup` can count writes,
- retries what is safe to retry (reads on any transient failure; writes only when the cluster refused them
  with 429 or 503, since a dropped connection may hide a write that happened), and
- turns every failure into a `ClusterError` whose message names the request and the cluster's reason.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .config import BasicAuth, Config, SigV4Auth
from .errors import AWS_CREDENTIALS_FIX, ClusterError, ConfigError

# Backoff before retry k (0-based) is RETRY_BASE_SECONDS * 2**k; tests lower it.
RETRY_BASE_SECONDS = 0.5
RETRY_ATTEMPTS = 4
_TRANSIENT = {429, 502, 503, 504}
# POSTs that read: they change nothing, so they never count as writes.
_READ_ONLY_POST_SUFFIXES = ("/_search", "/_count", "/_predict", "/_mget", "/_explain")


@dataclass(frozen=True)
class Call:
    """One request sent to the cluster and the status it got (0: no answer)."""

    method: str
    path: str
    status: int
    bookkeeping: bool = False  # os-rerank's own lock (lock.py): not a change to a managed resource

    @property
    def is_write(self) -> bool:
        if self.method in ("GET", "HEAD") or self.bookkeeping:
            return False
        path = self.path.split("?", 1)[0]
        reads = path.endswith(_READ_ONLY_POST_SUFFIXES) or "/_predict/" in path
        return not (self.method == "POST" and reads)


# Turns a failed request's (status, reason) into the fix a user should apply; diagnose.open_cluster installs the
# ML Commons remedy table (this transport knows nothing of ML Commons).
Diagnose = Callable[[int | None, str], "str | None"]


def _no_diagnosis(status: int | None, reason: str) -> str | None:
    return None


@dataclass
class Cluster:
    """A connection to one OpenSearch cluster; `calls` is everything sent, in order."""

    client: Any  # opensearchpy.OpenSearch
    url: str
    calls: list[Call] = field(default_factory=list)
    diagnose: Diagnose = _no_diagnosis
    on_call: Callable[[Call], None] | None = None
    sleep: Callable[[float], None] = time.sleep

    def writes(self) -> list[Call]:
        return [c for c in self.calls if c.is_write]

    def request(
        self,
        method: str,
        path: str,
        *,
        body: str | Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
        missing_ok: bool = False,
        bookkeeping: bool = False,
    ) -> Any:
        """The decoded response of `method path`; None for a 404 when `missing_ok`. ClusterError otherwise.

        `bookkeeping` marks os-rerank's own lock requests, which are not counted as writes.
        """
        from opensearchpy.exceptions import ConnectionError as OsConnectionError
        from opensearchpy.exceptions import SSLError, TransportError

        text = body if body is None or isinstance(body, str) else json.dumps(body, ensure_ascii=False)
        payload = text.encode("utf-8") if text is not None else None
        headers = {"content-type": content_type} if payload is not None else None
        shown = path if not params else f"{path}?{'&'.join(f'{k}={v}' for k, v in params.items())}"
        for attempt in range(RETRY_ATTEMPTS):
            try:
                result = self.client.transport.perform_request(
                    method, path, params=dict(params or {}), body=payload, headers=headers
                )
            except SSLError as exc:
                self._record(method, shown, 0, bookkeeping)
                raise ClusterError(
                    f"{method} {shown}: the TLS certificate of {self.url} is not trusted ({_short(exc)})",
                    fix="set opensearch.ca_certs to the cluster's CA bundle (or verify_certs: false, for tests only)",
                ) from None
            except OsConnectionError as exc:
                self._record(method, shown, 0, bookkeeping)
                if method in ("GET", "HEAD") and attempt + 1 < RETRY_ATTEMPTS:
                    self.sleep(RETRY_BASE_SECONDS * 2**attempt)
                    continue
                raise ClusterError(
                    f"{method} {shown}: no answer from {self.url} ({_short(exc)})",
                    fix="check opensearch.url (or OPENSEARCH_URL) and that the cluster is up",
                ) from None
            except TransportError as exc:
                status = exc.status_code if isinstance(exc.status_code, int) else None
                self._record(method, shown, status or 0, bookkeeping)
                if status == 404 and missing_ok:
                    return None
                retry = status in _TRANSIENT and (method in ("GET", "HEAD") or status in (429, 503))
                if retry and attempt + 1 < RETRY_ATTEMPTS:
                    self.sleep(RETRY_BASE_SECONDS * 2**attempt)
                    continue
                raise self._error(method, shown, status, exc.info) from None
            self._record(method, shown, 200, bookkeeping)
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    def _record(self, method: str, path: str, status: int, bookkeeping: bool = False) -> None:
        call = Call(method, path, status, bookkeeping)
        self.calls.append(call)
        if self.on_call is not None:
            self.on_call(call)

    def _error(self, method: str, path: str, status: int | None, info: Any) -> ClusterError:
        reason = error_reason(info)
        if status == 401:
            fix = (
                "check the credentials: OPENSEARCH_USERNAME / OPENSEARCH_PASSWORD for basic auth, the AWS "
                "credential chain for aws_sigv4"
            )
            return ClusterError(f"{method} {path}: {status} {reason}", fix=fix, status=status)
        if status == 403:  # authenticated, not allowed: name what is missing, never blame the credentials
            from .provision.permissions import explain_denied

            return ClusterError(f"{method} {path}: {status} {reason}", fix=explain_denied(method, path, reason),
                                status=status)
        return ClusterError(f"{method} {path}: {status} {reason}", fix=self.diagnose(status, reason), status=status)


def error_reason(info: Any) -> str:
    """The most specific human reason in an OpenSearch error body (root cause first), as one line."""
    if info is None or info == "" or info == b"":
        return "(no reason given)"
    if isinstance(info, (bytes, bytearray)):
        info = info.decode("utf-8", "replace")
    if isinstance(info, str):
        try:
            info = json.loads(info)
        except ValueError:
            return " ".join(info.split())[:500] or "(empty body)"
    if isinstance(info, dict):
        err = info.get("error", info)
        if isinstance(err, dict):
            causes = err.get("root_cause") or []
            cause = causes[0] if causes and isinstance(causes[0], dict) else err
            reason = cause.get("reason") or err.get("reason") or json.dumps(err, ensure_ascii=False)
            kind = cause.get("type") or err.get("type")
            return f"{reason} ({kind})" if kind else str(reason)
        if isinstance(err, str):
            return err
    return json.dumps(info, ensure_ascii=False)[:500]


def _short(exc: Exception) -> str:
    """The operative cause of a transport failure ("Connection refused", "timed out"), not urllib3's whole chain."""
    text = " ".join(str(getattr(exc, "info", "") or getattr(exc, "error", "") or exc).split())
    errno = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if errno:
        return errno.group(1).strip()
    if "timed out" in text.lower():
        return "timed out"
    return text[:200]


_log = logging.getLogger("os_rerank.cluster")


def _connection_class() -> Any:
    from opensearchpy import RequestsHttpConnection

    class Connection(RequestsHttpConnection):
        """RequestsHttpConnection whose TLS settings win over REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE.

        opensearch-py merges requests' environment settings into every send, and requests lets those variables
        replace the session's `verify`: opensearch.ca_certs (or verify_certs: false) would be silently ignored
        wherever the variables are set. With the default (verify against the system), the environment still
        applies, as users of corporate CA bundles expect.
        """

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            session = self.session
            chosen = session.verify
            merge = session.merge_environment_settings

            def merged(*margs: Any, **mkwargs: Any) -> Any:
                settings = merge(*margs, **mkwargs)
                if chosen is not True:
                    settings["verify"] = chosen
                return settings

            session.merge_environment_settings = merged  # type: ignore[method-assign]

        def _raise_warnings(self, warning_headers: Any) -> None:
            """A real node answers some requests with a Warning header (on 2.19.1, ML Commons' own searches of its
            system indices now and then: "this request accesses system indices: [.plugins-ml-connector], but in a
            future major version, direct access to system indices will be prevented by default"). opensearch-py
            turns each into a Python warning, which would print a stray line (or fail under -W error); they are
            the cluster's notes about its own internals, so they go to the debug log instead."""
            for header in warning_headers or ():
                _log.debug("warning from the cluster: %s", header)

    return Connection


def connect(config: Config, *, sleep: Callable[[float], None] = time.sleep) -> Cluster:
    """A Cluster for config.opensearch (auth, TLS); nothing is sent until the first request."""
    from opensearchpy import OpenSearch

    os_cfg = config.opensearch
    kwargs: dict[str, Any] = {
        "hosts": [os_cfg.url],
        "verify_certs": os_cfg.verify_certs,
        "ssl_show_warn": os_cfg.verify_certs,
        "timeout": os_cfg.timeout,
        # Retries are ours (see Cluster.request): opensearch-py would also retry a POST whose connection dropped.
        "max_retries": 0,
        "retry_on_timeout": False,
        "connection_class": _connection_class(),
    }
    if os_cfg.ca_certs is not None:
        kwargs["ca_certs"] = str(os_cfg.ca_certs)
    auth = os_cfg.auth
    if isinstance(auth, BasicAuth):
        if config.password is None:
            raise ConfigError(
                [f"{config.source.name}: opensearch.auth: type basic needs a password"],
                fix="set OPENSEARCH_PASSWORD in the environment",
            )
        kwargs["http_auth"] = (auth.username, config.password.get_secret_value())
    elif isinstance(auth, SigV4Auth):
        kwargs["http_auth"] = _sigv4_auth(config, auth)
    return Cluster(client=OpenSearch(**kwargs), url=os_cfg.url, sleep=sleep)


def _sigv4_auth(config: Config, auth: SigV4Auth) -> Any:
    """requests-aws4auth signing with the boto3 credential chain (refreshed as it expires)."""
    import boto3
    from requests_aws4auth import AWS4Auth

    session = boto3.Session(profile_name=config.aws.profile) if config.aws.profile else boto3.Session()
    credentials = session.get_credentials()
    if credentials is None:
        raise ConfigError(
            [f"{config.source.name}: opensearch.auth: aws_sigv4 found no AWS credentials"],
            fix=AWS_CREDENTIALS_FIX,
        )
    region = auth.region or config.sagemaker.region
    return AWS4Auth(refreshable_credentials=credentials, region=region, service=auth.service)
