"""The command line: parse arguments, load config, call one library function, print what it returns.

Thin by design: the library never prints, progress reaches the terminal through `on_event` callbacks, and only
`main` catches `OsRerankError` (one line per problem, stable exit codes, never a traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TextIO

from . import __version__
from .config import ENV_OVERRIDES, Config, load_config
from .contracts import CONTRACT_NAMES
from .errors import ExitStatus, Interrupted, LocalNodeError, OsRerankError, UsageError
from .output import Env, print_json, print_rendered, redact, table

Handler = Callable[[argparse.Namespace, Env], int]

EXIT_OK = ExitStatus.OK


def _config(args: argparse.Namespace, env: Env) -> Config:
    """The config, and every secret it or the machine holds added to the redaction set before anything prints."""
    from urllib.parse import urlsplit

    from .credentials import known_secrets

    config = load_config(args.config, env.environ)
    if config.password is not None:
        env.secrets.add(config.password.get_secret_value())
    url_password = urlsplit(config.opensearch.url).password
    if url_password:
        env.secrets.add(url_password)
    env.secrets.update(known_secrets(env.environ, config.aws.profile))
    if not config.opensearch.verify_certs and config.opensearch.url.lower().startswith("https:"):
        env.err("os-rerank: warning: opensearch.verify_certs is false: the cluster's certificate is not checked, so "
                "the password and everything sent can be read by whoever sits in between; set "
                "opensearch.ca_certs (OPENSEARCH_CA_CERTS) to the cluster's CA instead")
    return config


# --- validate / render (issue 2) --------------------------------------------------------------------------------


def _cmd_validate(args: argparse.Namespace, env: Env) -> int:
    config = _config(args, env)
    from .render import load_documents

    docs = load_documents(config)  # a bad documents file is a config problem too
    sm = config.sagemaker
    env.out(f"{args.config}: ok")
    env.out(f"  opensearch  {config.opensearch.url} (auth: {config.opensearch.auth.type})")
    env.out(f"  endpoint    {sm.name} in {sm.region}, contract {sm.contract}")
    env.out(f"  connector   {sm.connector_url}")
    env.out(f"  index       {config.index.name} ({len(docs)} sample documents)")
    env.out(f"  pipeline    {config.pipeline.name} over {', '.join(config.pipeline.document_fields)}")
    return EXIT_OK


def _cmd_render(args: argparse.Namespace, env: Env) -> int:
    from .render import render_requests

    config = _config(args, env)
    version = _render_version(args.opensearch_version, env)
    if args.what in ("role", "settings"):
        print_rendered(env, [_admin_request(config, args.what, version)])
        return EXIT_OK
    if args.what == "iam":
        from .iam import iam_requests

        print_rendered(env, iam_requests(config, args.operator_arn))
        return EXIT_OK
    if args.operator_arn is not None:
        raise UsageError("--operator-arn goes with --what iam")
    if args.what == "dense":  # the dense first stage (config `embedding`, dense.py)
        from .dense import render_requests as render_dense

        print_rendered(env, render_dense(config, version=version))
        return EXIT_OK
    print_rendered(env, render_requests(config, what=args.what, version=version))
    return EXIT_OK


def _admin_request(config: Config, what: str, version: tuple[int, int, int]) -> Any:
    """What an admin applies: the operator's security role, or the cluster settings setup needs (issue 13)."""
    from .permissions import ROLE_NAME, role_body
    from .plan import desired_state, settings_body
    from .preflight import is_private_host
    from .render import Rendered, dumps

    if what == "role":
        return Rendered("role", "PUT", f"/_plugins/_security/api/roles/{ROLE_NAME}", dumps(role_body(config)))
    desired = desired_state(config, version, endpoint_private=is_private_host(config.sagemaker.connector_url))
    return Rendered("settings", "PUT", "/_cluster/settings", dumps(settings_body(desired)))


def _render_version(text: str, env: Env) -> tuple[int, int, int]:
    """--opensearch-version: refused below 2.12; above the newest os-rerank knows, rendered as that one, saying so."""
    from .errors import RenderError
    from .render import MIN_VERSION, NEWEST_VERSION, format_version, parse_version

    try:
        version = parse_version(text)
    except RenderError as exc:
        raise UsageError(f"--opensearch-version: {exc.message}", fix=exc.fix) from None
    if version < MIN_VERSION:
        raise UsageError(f"--opensearch-version {text}: os-rerank needs OpenSearch {format_version(MIN_VERSION)} or "
                         "newer (remote text_similarity models and the rerank processor start there)")
    if version > NEWEST_VERSION:
        env.err(f"os-rerank: note: {format_version(version)} is newer than the newest version os-rerank knows "
                f"({format_version(NEWEST_VERSION)}); rendering what {format_version(NEWEST_VERSION)} takes")
    return version


# --- provisioning (issue 4) ---------------------------------------------------------------------------------------


def _cmd_plan(args: argparse.Namespace, env: Env) -> int:
    from .plan import plan_lines
    from .provision import open_cluster, plan_setup

    config = _config(args, env)
    plan = plan_setup(open_cluster(config), config)
    if args.json:
        print_json(env, plan.to_dict())
    else:
        for line in plan_lines(plan):
            env.out(line)
    return EXIT_OK


def _cmd_setup(args: argparse.Namespace, env: Env) -> int:
    from .credentials import connector_credential, credential_warnings, is_aws_managed
    from .provision import open_cluster, run_setup
    from .verify import check

    config = _config(args, env)
    credential = connector_credential(config)
    env.secrets.update(credential.secrets())  # before anything can print
    for warning in credential_warnings(credential, aws_managed=is_aws_managed(config)):
        env.err(f"os-rerank: warning: {warning}")
    cluster = open_cluster(config)
    on_event = None if args.json else (lambda event: env.out(event.line()))
    result = run_setup(cluster, config, credential, on_event=on_event, run_verify=not args.no_verify,
                       deploy_timeout=args.timeout)
    if args.json:
        print_json(env, result.to_dict())
    else:
        if result.writes == 0:
            env.out("No changes. The cluster already matches the config (0 writes).")
        else:
            env.out(f"Setup applied: {len(result.applied.steps)} steps, {result.writes} write requests.")
        for line in result.verify.lines() if result.verify else []:
            env.out(line)
    if result.verify is not None:
        check(result.verify)
    return EXIT_OK


def _cmd_verify(args: argparse.Namespace, env: Env) -> int:
    from .credentials import chain_secrets
    from .provision import open_cluster, run_verify
    from .verify import check

    config = _config(args, env)
    env.secrets.update(chain_secrets(config))
    report = run_verify(open_cluster(config), config)
    if args.json:
        print_json(env, report.to_dict())
    else:
        for line in report.lines():
            env.out(line)
    check(report)
    return EXIT_OK


def _cmd_status(args: argparse.Namespace, env: Env) -> int:
    from .provision import open_cluster, run_status
    from .status import HEADERS

    config = _config(args, env)
    rows = run_status(open_cluster(config), config)
    if args.json:
        print_json(env, [r.to_dict() for r in rows])
    else:
        env.out(table([(r.resource, r.name, r.id, r.state) for r in rows], HEADERS))
    return EXIT_OK


def _cmd_teardown(args: argparse.Namespace, env: Env) -> int:
    from .errors import ClusterError
    from .provision import open_cluster
    from .teardown import teardown

    config = _config(args, env)
    on_step = None if args.json else (lambda step: env.out(step.line()))
    report = teardown(open_cluster(config), config, keep_index=args.keep_index, on_step=on_step)
    if args.json:
        print_json(env, report.to_dict())
    else:
        for note in report.notes:
            env.err(f"os-rerank: note: {note}")
    if report.failed:
        raise ClusterError(f"teardown: {len(report.failed)} step(s) failed: "
                           + "; ".join(f"{s.resource} {s.id or s.name}" for s in report.failed),
                           fix="fix the causes above and run `os-rerank teardown` again (it skips what is gone)")
    if not args.json:
        env.out("Teardown complete.")
    return EXIT_OK

# --- promote / rollback (issue 15) -------------------------------------------------------------------------------


def _cmd_promote(args: argparse.Namespace, env: Env) -> int:
    from .credentials import chain_secrets
    from .promote import check_index_name, run_promote, run_rollback

    config = _config(args, env)
    env.secrets.update(chain_secrets(config))
    index = check_index_name(args.index or config.index.name)
    from .provision import open_cluster

    cluster = open_cluster(config)
    on_event = None if args.json else env.err
    if args.command == "rollback":
        result = run_rollback(cluster, config, index=index, dry_run=args.dry_run, on_event=on_event)
    else:
        gate = _promote_gate(args, env, cluster, config) if args.require_gain is not None else None
        result = run_promote(cluster, config, index=index, dry_run=args.dry_run, on_event=on_event, gate=gate,
                             allow_failing_searches=args.allow_failing_searches)
    if args.json:
        print_json(env, result.to_dict())
    else:
        _print_promote(env, result)
    if result.gate is not None and not result.gate.passed:
        raise result.gate.error()
    return EXIT_OK


def _print_promote(env: Env, result: Any) -> None:
    from .promote import change_lines

    for line in result.gate.lines() if result.gate is not None else []:
        env.out(line)
    if result.gate is not None and not result.gate.passed:
        env.out(f"{result.change.command}: refused by the gate; nothing sent")
        return
    for line in change_lines(result.change, dry_run=result.dry_run):
        env.out(line)
    if result.writes:
        env.out(f"{result.change.command.capitalize()} applied: {result.writes} write requests.")


def _promote_gate(args: argparse.Namespace, env: Env, cluster: Any, config: Config) -> Callable[[], Any]:
    """The gate promote runs before it writes: eval at --depth on --queries/--qrels, --metric gain ≥ --require-gain."""
    from .eval import check_depths, load_corpus, load_qrels, load_queries, run_eval
    from .gate import evaluate_gate

    if not args.queries or not args.qrels:
        raise UsageError("--require-gain needs --queries FILE and --qrels FILE to measure the gain on")
    check_depths(config, [args.depth])
    queries, qrels = load_queries(args.queries), load_qrels(args.qrels)  # bad files fail before anything runs
    corpus = (load_corpus(args.corpus, config.pipeline.document_fields, config.index.fields)
              if args.corpus else None)

    def gate() -> Any:
        report = run_eval(cluster, config, queries, qrels, depths=[args.depth], corpus=corpus,
                          corpus_name=args.corpus, on_event=env.err)
        return evaluate_gate(report.to_json(), metric=args.metric, min_gain=args.require_gain)

    return gate


def _cmd_workbench_export(args: argparse.Namespace, env: Env) -> int:
    from .eval import load_qrels, load_queries
    from .preflight import read_cluster_info
    from .provision import open_cluster
    from .workbench import apply_export, check_name, plan_export

    config = _config(args, env)
    name = check_name(args.name)
    queries, qrels = load_queries(args.queries), load_qrels(args.qrels)
    cluster = open_cluster(config)
    export = plan_export(cluster, read_cluster_info(cluster), name, queries, qrels, dry_run=args.dry_run)
    if not args.dry_run:
        export = apply_export(cluster, export)
    if args.json:
        print_json(env, export.to_dict())
    else:
        for line in export.lines():
            env.out(line)
    return EXIT_OK


# --- search / eval (issue 5) ----------------------------------------------------------------------------------------



def _cmd_search(args: argparse.Namespace, env: Env) -> int:
    from .cluster import connect
    from .output import print_json
    from .search import format_search, load_query_json, run_search

    config = _config(args, env)
    query, base = load_query_json(args.query_json) if args.query_json else (None, None)
    result = run_search(
        connect(config), config, args.query, size=args.size, window=args.window, min_score=args.min_score,
        query=query, base=base, compare=args.compare, first_stage=args.first_stage,
    )
    if args.json:
        print_json(env, result.to_json())
        return EXIT_OK
    for note in result.notes:
        env.err(f"os-rerank: note: {note}")
    env.out(format_search(result, config.pipeline.document_fields))
    return EXIT_OK


def _cmd_eval(args: argparse.Namespace, env: Env) -> int:
    from .cluster import connect
    from .eval import (
        format_report,
        load_corpus,
        load_qrels,
        load_queries,
        parse_depths,
        plot_report,
        require_matplotlib,
        run_eval,
    )
    from .output import print_json

    config = _config(args, env)
    if args.plot:
        require_matplotlib()
    depths = parse_depths(args.depths)
    from .gate import load_baseline

    baseline = load_baseline(args.baseline, depths) if args.baseline else None  # a bad file fails before any search
    queries = load_queries(args.queries)
    qrels = load_qrels(args.qrels)
    corpus = (load_corpus(args.corpus, config.pipeline.document_fields, config.index.fields)
              if args.corpus else None)
    report = run_eval(connect(config), config, queries, qrels, depths=depths, corpus=corpus,
                      corpus_name=args.corpus, on_event=env.err)
    if args.plot:
        plot_report(report, args.plot)
        env.err(f"eval: plot written to {args.plot}")
    data = report.to_json()
    extra = _eval_gate_and_capacity(args, data, depths, baseline)
    gate = extra.pop("gate_result", None)
    gate_lines = extra.pop("gate_lines", [])
    data.update(extra)
    if args.json:
        print_json(env, data)
    else:
        env.out(format_report(report))
        for line in ([extra["capacity"]["line"]] if extra.get("capacity") else []) + gate_lines:
            env.out(line)
    if gate is not None and not gate.passed:
        raise gate.error()
    return EXIT_OK


def _eval_gate_and_capacity(args: argparse.Namespace, data: dict[str, Any], depths: Sequence[int],
                            baseline: dict[str, Any] | None) -> dict[str, Any]:
    """The gate (when --fail-under / --baseline / --max-p95-ms asked for it) and the capacity note (--target-qps)."""
    from .capacity import capacity_note, pairs_per_second_from_eval
    from .gate import evaluate_gate

    out: dict[str, Any] = {}
    if args.target_qps is not None:
        rows = {(r["depth"], r["run"]): r for r in data["results"]}
        depth = max(depths)
        pairs = pairs_per_second_from_eval(depth, rows[(depth, "reranked")]["latency_ms"]["p50"],
                                           rows[(depth, "without")]["latency_ms"]["p50"])
        if pairs is not None:
            note = capacity_note(depth=depth, pairs_per_second=pairs, target_qps=args.target_qps,
                                 target_p95_ms=args.target_p95_ms,
                                 p95_alone_ms=rows[(depth, "reranked")]["latency_ms"]["p95"])
            out["capacity"] = note.to_json()
        else:
            out["capacity"] = {"line": f"capacity: reranking added no measurable latency at depth {depth}; "
                                       "measure pairs/s with bench/serve_bench.py instead"}
    if args.fail_under is None and args.baseline is None and args.max_p95_ms is None:
        return out
    gate = evaluate_gate(data, metric=args.metric, min_gain=args.fail_under, baseline=baseline,
                         max_drop=args.max_drop, max_p95_ms=args.max_p95_ms)
    out["gate"] = gate.to_json()
    out["gate_lines"] = gate.lines()
    out["gate_result"] = gate
    return out

# --- the local endpoint (issue 3) -----------------------------------------------------------------------------------

SERVE_KEY_ID_ENV = "OS_RERANK_SERVE_ACCESS_KEY_ID"
SERVE_SECRET_ENV = "OS_RERANK_SERVE_SECRET_ACCESS_KEY"
SERVE_MODEL_ENV = "OS_RERANK_SERVE_MODEL"
SAGEMAKER_MODEL_DIR = "/opt/ml/model"
SAGEMAKER_PORT_ENV = "SAGEMAKER_BIND_TO_PORT"


def _cmd_serve(args: argparse.Namespace, env: Env) -> int:
    import logging

    from .contracts import get_contract
    from .server.app import EndpointServer, RecordError
    from .server.scorers import ScorerError, load_scorer

    key_id = args.access_key_id or env.environ.get(SERVE_KEY_ID_ENV)
    secret = env.environ.get(SERVE_SECRET_ENV)
    if bool(key_id) != bool(secret):
        raise UsageError("SigV4 needs both an access key id and its secret",
                            fix=f"set {SERVE_SECRET_ENV} together with --access-key-id / {SERVE_KEY_ID_ENV}")
    if secret:
        env.secrets.add(secret)
    model = args.model or env.environ.get(SERVE_MODEL_ENV) or None
    if model is None and os.path.isfile(os.path.join(SAGEMAKER_MODEL_DIR, "config.json")):
        model = SAGEMAKER_MODEL_DIR  # where SageMaker (and Dockerfile.endpoint's MODEL_ID) put the model
    try:
        scorer = load_scorer(model, max_length=args.max_length, batch_size=args.batch_size,
                             quantize=args.quantize, threads=args.threads, backend=args.backend)
    except ScorerError as exc:
        raise UsageError(str(exc), fix="pass --model DIR (a save_pretrained() directory) or leave it out") from exc
    port = args.port
    if port is None:
        text = env.environ.get(SAGEMAKER_PORT_ENV) or "8080"
        if not text.isdigit() or not 0 < int(text) < 65536:
            raise UsageError(f"{SAGEMAKER_PORT_ENV}={text!r} is not a port", fix="unset it or pass --port")
        port = int(text)
    region = args.region or env.environ.get("AWS_REGION") or env.environ.get("AWS_DEFAULT_REGION") or "us-west-2"
    try:
        server = EndpointServer(get_contract(args.contract), scorer, host=args.host, port=port,
                                endpoint_name=args.endpoint_name,
                                credentials={key_id: secret} if key_id and secret else None, region=region,
                                max_body_bytes=args.max_body_bytes, max_documents=args.max_documents,
                                max_connections=args.max_connections, request_timeout=args.request_timeout,
                                record_path=args.record)
    except RecordError as exc:
        raise UsageError(str(exc), fix="pass --record a file this user can write, or leave it out") from None
    except OSError as exc:
        import errno

        in_use = exc.errno in (errno.EADDRINUSE, errno.EACCES)
        raise UsageError(f"cannot listen on {args.host}:{port}: {exc.strerror or exc}",
                         fix="pick another --port, or stop what is using this one" if in_use else
                         "--host must be an address of this machine (127.0.0.1, 0.0.0.0, ...)") from None
    handler = logging.StreamHandler(env.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    server_log = logging.getLogger("os_rerank.server")
    server_log.addHandler(handler)
    server_log.setLevel(logging.INFO)
    env.out(f"scorer    {scorer.name}")
    extra = server.contract.extra_path
    env.out(f"contract  {args.contract} (POST /invocations{', ' + extra if extra else ''})")
    env.out(f"endpoint  POST /endpoints/{args.endpoint_name}/invocations")
    env.out(f"sigv4     verified for access key {key_id}, region {region}, on every POST route" if key_id else
            f"sigv4     NOT verified (set {SERVE_KEY_ID_ENV} and {SERVE_SECRET_ENV} to verify)")
    env.out(f"limits    {args.max_body_bytes} bytes, {args.max_documents} documents per request; "
            f"{args.max_connections} connections; {args.request_timeout:g} s to send a request")
    if args.record:
        env.out(f"record    appending each request body to {args.record}")
    env.out(f"listening on {server.url}")
    env.stdout.flush()
    try:
        server.serve_forever()
    finally:
        server_log.removeHandler(handler)
    return EXIT_OK

# --- the AWS side (issue 7) -----------------------------------------------------------------------------------------

def _cmd_endpoint(args: argparse.Namespace, env: Env) -> int:
    from . import aws_endpoint
    from .credentials import chain_secrets
    from .output import print_json, table

    config = _config(args, env)
    env.secrets.update(chain_secrets(config))
    clients = aws_endpoint.aws_clients(config)
    if args.action == "deploy" and args.dry_run:
        from .endpoint_plan import plan_deploy

        plan = plan_deploy(config, clients)
        if args.json:
            print_json(env, plan.to_json())
            return EXIT_OK
        for warning in plan.warnings:
            env.err(f"warning: {warning}")
        env.out(f"endpoint {plan.endpoint_name}: plan ({plan.handler} handler); nothing was written")
        env.out(f"  model     {plan.model_name}")
        env.out(f"  config    {plan.config_name}")
        if plan.archive is not None:
            env.out(f"  data      {plan.archive['url']} ({plan.archive['size']} bytes, "
                    f"{len(plan.archive['members'])} files, sha256 {plan.archive['sha256'][:16]})")
        env.out(table([[s.operation, s.target, s.reason] for s in plan.steps], ["operation", "target", "why"]))
        return EXIT_OK
    if args.action == "deploy":
        result = aws_endpoint.deploy_endpoint(config, clients, on_event=env.err, timeout=args.timeout)
        if args.json:
            print_json(env, result.to_json())
            return EXIT_OK
        env.out(f"endpoint {result.endpoint_name}: {result.outcome}, {result.status}")
        env.out(f"  model     {result.model_name}")
        env.out(f"  config    {result.config_name} ({result.instance_count} x {result.instance_type})")
        env.out(f"  image     {result.image_uri}")
        if result.model_data_url:
            env.out(f"  data      {result.model_data_url}")
        env.out(f"  writes    {', '.join(result.writes) or 'none'}")
        return EXIT_OK
    if args.action == "status":
        status = aws_endpoint.endpoint_status(config, clients)
        if args.json:
            print_json(env, status)
            return EXIT_OK
        rows = [[key, _status_cell(value)] for key, value in status.items() if value is not None]
        env.out(table(rows, ["field", "value"]))
        return EXIT_OK
    deleted = aws_endpoint.delete_endpoint(config, clients, on_event=env.err)
    if args.json:
        print_json(env, deleted.to_json())
        return EXIT_OK
    for item in deleted.deleted:
        env.out(f"deleted   {item}")
    for item in deleted.missing:
        env.out(f"missing   {item} (nothing to delete)")
    return EXIT_OK


def _status_cell(value: object) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items() if v is not None)
    if isinstance(value, list):
        return "; ".join(str(v) for v in value) or "none"
    return str(value)


def _cmd_rotate_credentials(args: argparse.Namespace, env: Env) -> int:
    from .cluster import connect
    from .credentials import connector_credential, credential_warnings, is_aws_managed
    from .output import print_json
    from .rotate import predict_roundtrip, rotate_credentials

    config = _config(args, env)
    cred = connector_credential(config)
    env.secrets.update(cred.secrets())
    for warning in credential_warnings(cred, aws_managed=is_aws_managed(config)):
        env.err(f"os-rerank: warning: {warning}")
    result = rotate_credentials(connect(config), config, cred, on_event=env.err,
                                verify=None if args.no_verify else predict_roundtrip)
    if args.json:
        print_json(env, result.to_json())
        return EXIT_OK
    env.out(f"connector {result.connector_id}: credential updated ({result.credential_kind}); "
            f"models {', '.join(result.model_ids) or 'none'}; verified: {'yes' if result.verified else 'no'}")
    return EXIT_OK


# --- a real node on this machine (os-rerank local) -----------------------------------------------------------------


def _cmd_local(args: argparse.Namespace, env: Env) -> int:
    from pathlib import Path

    from .local import node as local

    home = Path(args.dir).expanduser().absolute() if args.dir else local.default_home(env.environ)
    try:
        return _local_action(args, env, home)
    except OSError as exc:  # a folder or file os-rerank may not touch, a full disk: one line, not a traceback
        where = f" ({exc.filename})" if exc.filename else ""
        raise LocalNodeError(f"{exc.strerror or exc}{where}", fix="check the folder's owner and free space") \
            from None


def _local_action(args: argparse.Namespace, env: Env, home: object) -> int:
    from pathlib import Path

    from .local import node as local

    assert isinstance(home, Path)
    if args.action == "up":
        ask = local.Ask(name=args.name or local.default_name(bool(args.secure)), version=args.version,
                        port=args.port, secure=args.secure, heap=args.heap)
        try:
            result = local.up(ask, home=home, cache_root=local.default_cache(env.environ), environ=env.environ,
                              repository=args.repository, fresh=args.fresh, timeout=args.timeout,
                              progress=lambda line: env.err(f"local: {line}"))
        except KeyboardInterrupt:
            raise Interrupted("interrupted: the node that was starting is stopped, and no partial download or build "
                              "remains", fix="run `os-rerank local up` again") from None
        if args.json:
            print_json(env, result.to_json())
            return EXIT_OK
        node = result.node
        env.out(f"node {node.name}: {result.outcome} in {result.seconds:.1f}s (pid {result.pid})")
        for line in _local_lines(node):
            env.out(line)
        env.out(f"stop it with: os-rerank local down --name {node.name}")
        return EXIT_OK
    if args.action == "env":
        node = local.select(home, args.name, one=True)[0]
        for line in _local_env(node):
            env.out(line)
        return EXIT_OK
    if args.action == "status":
        statuses = [local.status(n) for n in local.select(home, args.name)]
        if args.json:
            print_json(env, [s.to_json() for s in statuses])
            return EXIT_OK
        rows = [(s.node.name, s.node.version + (" secured" if s.node.secure else ""), s.node.url, s.state,
                 s.pid or "-", f"{s.rss / 1e6:.0f} MB" if s.rss else "-") for s in statuses]
        env.out(table(rows, ("name", "version", "url", "state", "pid", "rss")))
        return EXIT_OK
    if args.action == "logs":
        node = local.select(home, args.name, one=True)[0]
        for line in local.last_lines(node, args.lines):
            env.out(line)
        return EXIT_OK
    for node in local.select(home, args.name):
        env.out(f"node {node.name}: {local.down(node, purge=args.purge)}")
    return EXIT_OK


def _local_lines(node: object) -> list[str]:
    from .local.layout import ADMIN_USER, NodeInfo

    assert isinstance(node, NodeInfo)
    lines = [f"  url       {node.url}", f"  version   OpenSearch {node.version} with ML Commons, neural-search, "
             f"k-NN{', security' if node.secure else ''} (Java {node.java_version}, heap {node.heap})",
             f"  folder    {node.folder}"]
    if node.secure:
        lines += [f"  ca        {node.ca_certs}  (opensearch.ca_certs, or OPENSEARCH_CA_CERTS)",
                  f"  user      {ADMIN_USER}  (OPENSEARCH_USERNAME)",
                  f"  password  in {node.password_file}  (OPENSEARCH_PASSWORD; never printed)",
                  f"  env       eval \"$(os-rerank local env --name {node.name})\" sets all of these"]
    return lines


def _local_env(node: object) -> list[str]:
    """Shell lines that point os-rerank at the node; the password is read from its file, never printed."""
    import shlex

    from .local.layout import ADMIN_USER, NodeInfo

    assert isinstance(node, NodeInfo)
    lines = [f"export OPENSEARCH_URL={shlex.quote(node.url)}"]
    if node.secure:
        lines += [f"export OPENSEARCH_USERNAME={ADMIN_USER}",
                  f"export OPENSEARCH_PASSWORD=\"$(cat {shlex.quote(str(node.password_file))})\"",
                  f"export OPENSEARCH_CA_CERTS={shlex.quote(str(node.ca_certs))}"]
    else:
        lines += ["unset OPENSEARCH_USERNAME OPENSEARCH_PASSWORD OPENSEARCH_CA_CERTS"]
    return lines


# --- argument types: every number range-checked before anything runs ------------------------------------------------


def _region(text: str) -> str:
    """An argparse type: an AWS region name such as us-west-2."""
    import re

    from .config import REGION_PATTERN

    if not re.fullmatch(REGION_PATTERN, text):
        raise argparse.ArgumentTypeError(f"expected an AWS region such as us-west-2, got {text!r}")
    return text


def _number(kind: type, low: float | None = None, high: float | None = None, what: str = "a number") -> Any:
    """An argparse type: a finite `kind` in [low, high], else a one-line usage error naming the range."""
    import math

    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        if (low is not None and value < low) or (high is not None and value > high):
            lo, hi = _shown(low), _shown(high)
            span = f"from {lo} to {hi}" if low is not None and high is not None else (
                f"at least {lo}" if low is not None else f"at most {hi}")
            raise argparse.ArgumentTypeError(f"expected {what} {span}, got {text!r}")
        return value

    return convert


def _shown(bound: float | None) -> str:
    return "" if bound is None else str(int(bound)) if float(bound).is_integer() else f"{bound:g}"


SECONDS = _number(float, 0.1, 86400.0, "a number of seconds")
COUNT = _number(int, 1, 1_000_000, "a whole number")


class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors in os-rerank's one-line form (and exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(ExitStatus.USAGE, f"os-rerank: error: {self.prog}: {message}\n"
                                    f"os-rerank: error: fix: see `{self.prog} --help`\n")


# --- the parser -----------------------------------------------------------------------------------------------------


def _add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", default="config.yaml", metavar="FILE",
                   help="the YAML configuration (default: config.yaml)")


def _add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output (secrets redacted)")


def build_parser() -> argparse.ArgumentParser:
    overrides = "\n".join(f"  {k:<20} {v}" for k, v in ENV_OVERRIDES.items())
    parser = _Parser(
        prog="os-rerank",
        description="Turn an OpenSearch cluster and a cross-encoder on a SageMaker endpoint into working search "
        "reranking, and prove it works.",
        epilog=f"environment overrides (they win over the config file):\n{overrides}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"os-rerank {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        return p

    p = command("validate", _cmd_validate, "check a config file and print what it describes")
    _add_config(p)

    p = command("render", _cmd_render, "print the exact requests `setup` sends (credentials shown as ***)")
    _add_config(p)
    p.add_argument("--what", default="all",
                   choices=["connector", "model", "index", "pipeline", "all", "role", "settings", "iam", "dense"],
                   help="one request kind, or all that setup sends; `role`: the security-plugin role a user needs to "
                   "run every os-rerank command; `settings`: the PUT _cluster/settings an admin applies (on an empty "
                   "list; `plan` shows it merged with the cluster's); `iam`: for Amazon OpenSearch Service, the "
                   "connector role (connector.role_arn) trust and SageMaker policies and the operator's policy; "
                   "`dense`: what setup sends for the embedding section (dense and hybrid first stages)")
    p.add_argument("--operator-arn", metavar="ARN",
                   help="with --what iam: the IAM role or user that runs os-rerank, mapped to ml_full_access and to "
                   "the operator role")
    p.add_argument("--opensearch-version", default="3.8.0", metavar="X.Y.Z",
                   help="render for this OpenSearch / ML Commons version (default: the newest known, 3.8.0)")

    p = command("plan", _cmd_plan, "show what `setup` would change, reading the cluster only")
    _add_config(p)
    _add_json(p)

    p = command("setup", _cmd_setup, "create or update everything, then verify it end to end")
    _add_config(p)
    _add_json(p)
    p.add_argument("--no-verify", action="store_true", help="skip the end-to-end check after applying")
    p.add_argument("--timeout", type=SECONDS, default=120.0, metavar="SECONDS",
                   help="how long to wait for a model to deploy (default: 120)")

    p = command("verify", _cmd_verify, "check the predict roundtrip against the endpoint and a reranked search")
    _add_config(p)
    _add_json(p)

    p = command("status", _cmd_status, "show every resource os-rerank manages, its id and state")
    _add_config(p)
    _add_json(p)

    p = command("teardown", _cmd_teardown, "remove what `setup` made: pipeline, index, model, connector")
    _add_config(p)
    _add_json(p)
    p.add_argument("--keep-index", action="store_true", help="leave the test index and its documents")

    p = command("search", _cmd_search, "search through the rerank pipeline and show the reranked hits")
    _add_config(p)
    _add_json(p)
    p.add_argument("query", help="the query text (also sent to the reranker as ext.rerank.query_context)")
    p.add_argument("--size", "-n", type=_number(int, 1, 10_000, "a number of hits"), default=5, metavar="N",
                   help="hits to show (default 5)")
    p.add_argument("--window", "-k", type=_number(int, 1, 10_000, "a number of hits"), metavar="K",
                   help="hits to rerank, at most sagemaker.max_batch (default: max(4N, 20), capped at max_batch)")
    p.add_argument("--min-score", type=_number(float, what="a score"), metavar="S",
                   help="hide hits whose (reranked) score is below S")
    p.add_argument("--compare", action="store_true",
                   help="also run the query without the pipeline and show each hit's rank before reranking")
    p.add_argument("--query-json", metavar="FILE",
                   help="first-stage query DSL: a JSON file holding the `query` object or a whole search body "
                   "(default: match on pipeline.document_fields)")
    p.add_argument("--first-stage", choices=("lexical", "dense", "hybrid"), default=None,
                   help="what finds the hits the reranker reorders: BM25, the embedding model's k-NN search, or "
                   "both combined (default: hybrid when the config has an embedding section, else lexical)")

    p = command("eval", _cmd_eval, "measure what reranking buys: nDCG, MRR, recall and latency")
    _add_config(p)
    _add_json(p)
    p.add_argument("--queries", required=True, metavar="FILE", help='queries: JSONL {"id","text"} or TSV id<TAB>text')
    p.add_argument("--qrels", required=True, metavar="FILE",
                   help='judgments: TREC qrels (qid 0 docid rel) or JSONL {"query_id","doc_id","relevance"}')
    p.add_argument("--corpus", metavar="FILE",
                   help="JSONL documents to load into <index>-eval (default: evaluate on the test index)")
    p.add_argument("--depths", default="10,20,50", metavar="K,K,...",
                   help="hits reranked per query, each at most sagemaker.max_batch (default 10,20,50)")
    p.add_argument("--plot", metavar="FILE.png", help="also draw metrics and latency against depth (needs [plot])")
    gain = _number(float, -1.0, 1.0, "a metric difference")
    p.add_argument("--fail-under", type=gain, metavar="GAIN",
                   help="exit 9 unless reranking gains at least GAIN in --metric at every depth (e.g. 0.02)")
    p.add_argument("--baseline", metavar="FILE", help="a saved `eval --json` run: exit 9 when the reranked --metric "
                   "falls below it by more than --max-drop at a depth both evaluated")
    p.add_argument("--max-drop", type=_number(float, 0.0, 1.0, "a metric difference"), default=0.0, metavar="D",
                   help="with --baseline: the drop allowed (default 0)")
    p.add_argument("--max-p95-ms", type=_number(float, 0.1, 3_600_000.0, "milliseconds"), metavar="MS",
                   help="exit 9 when the reranked search's p95 exceeds MS at a depth")
    p.add_argument("--metric", choices=["ndcg", "mrr"], default="ndcg",
                   help="what the gate compares: nDCG@10 (default) or MRR@10")
    p.add_argument("--target-qps", type=_number(float, 0.001, 1e9, "queries per second"), metavar="QPS",
                   help="add a capacity note: endpoint instances for QPS at the largest depth, from the latency "
                   "reranking added")
    p.add_argument("--target-p95-ms", type=_number(float, 0.1, 3_600_000.0, "milliseconds"), metavar="MS",
                   help="with --target-qps: the p95 the capacity note must keep")

    for name, text in (("promote", "make the rerank pipeline the index's default search pipeline (every search "
                                    "that names none is reranked), recording the default it replaces"),
                       ("rollback", "restore the default search pipeline `promote` replaced (none: the setting is "
                                    "removed)")):
        p = command(name, _cmd_promote, text)
        _add_config(p)
        _add_json(p)
        p.add_argument("--index", metavar="NAME", help="the index (default: index.name)")
        p.add_argument("--dry-run", action="store_true", help="print the exact requests and send nothing")
        if name == "promote":
            p.add_argument("--allow-failing-searches", action="store_true",
                           help="promote even though the pipeline has ignore_failure off (searches without the rerank "
                           "context, and _count, then fail)")
            p.add_argument("--require-gain", type=gain, metavar="GAIN",
                           help="first evaluate --queries/--qrels at --depth; refuse (exit 9) unless reranking "
                           "gains at least GAIN in --metric")
            p.add_argument("--queries", metavar="FILE", help="with --require-gain: the queries (as for eval)")
            p.add_argument("--qrels", metavar="FILE", help="with --require-gain: the judgments (as for eval)")
            p.add_argument("--corpus", metavar="FILE", help="with --require-gain: a corpus (as for eval)")
            p.add_argument("--depth", type=_number(int, 1, 10_000, "a number of hits"), default=20, metavar="K",
                           help="with --require-gain: hits reranked per query (default 20)")
            p.add_argument("--metric", choices=["ndcg", "mrr"], default="ndcg",
                           help="with --require-gain: the metric that must gain, nDCG@10 (default) or MRR@10")

    p = command("workbench-export", _cmd_workbench_export,
                "export an eval set (queries, judgments) to the Search Relevance Workbench (OpenSearch 3.1+)")
    _add_config(p)
    _add_json(p)
    p.add_argument("--queries", required=True, metavar="FILE", help="queries, as for eval")
    p.add_argument("--qrels", required=True, metavar="FILE", help="judgments, as for eval")
    p.add_argument("--name", default="os-rerank-eval", metavar="NAME",
                   help="the query set's and the judgment list's name (default os-rerank-eval)")
    p.add_argument("--dry-run", action="store_true", help="print the exact requests and send nothing")

    p = command("serve", _cmd_serve, "run a local SageMaker-compatible cross-encoder endpoint")
    p.add_argument("--contract", default="hf-text-classification", choices=CONTRACT_NAMES)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=_number(int, 0, 65535, "a port"), default=None,
                   help=f"port to listen on; 0 picks a free one (default: env {SAGEMAKER_PORT_ENV}, which SageMaker "
                   "sets for some containers, else 8080)")
    p.add_argument("--model", metavar="DIR", default=None,
                   help=f"a local cross-encoder directory (save_pretrained layout; env {SERVE_MODEL_ENV}; "
                   f"default {SAGEMAKER_MODEL_DIR} when it holds a model); otherwise the lexical scorer (no weights, "
                   "no torch)")
    p.add_argument("--endpoint-name", default="os-rerank-cross-encoder", metavar="NAME",
                   help="the name answered on /endpoints/NAME/invocations (default: os-rerank-cross-encoder)")
    p.add_argument("--max-length", type=_number(int, 8, 8192, "a number of tokens"), default=512, metavar="TOKENS",
                   help="truncate each pair to this many tokens (default: 512)")
    p.add_argument("--batch-size", type=_number(int, 1, 4096, "a batch size"), default=32, metavar="N",
                   help="pairs per forward pass (default: 32)")
    p.add_argument("--quantize", default="none", choices=["none", "int8", "bf16"],
                   help="dynamic int8 or bfloat16 inference (faster; scores change slightly)")
    p.add_argument("--backend", default="auto", choices=["auto", "torch", "onnx", "openvino"],
                   help="run the model with ONNX Runtime (DIR/model.onnx or DIR/onnx/model.onnx; no torch needed), "
                   "with OpenVINO in fp32 (the same file; pip install 'os-rerank[openvino]') or with torch; auto: "
                   "ONNX Runtime when DIR holds an export, else torch (default: auto)")
    p.add_argument("--threads", type=_number(int, 1, 1024, "a number of threads"), default=None, metavar="N",
                   help="the runtime's threads (default: its own, one per core)")
    p.add_argument("--max-body-bytes", type=_number(int, 1, 1 << 30, "a size in bytes"), default=6 * 1024 * 1024,
                   metavar="BYTES",
                   help="refuse larger bodies with 413 (default: 6291456, SageMaker's limit)")
    p.add_argument("--max-documents", type=_number(int, 1, 1_000_000, "a number of documents"), default=1000,
                   metavar="N", help="refuse requests with more documents with 413 (default: 1000)")
    p.add_argument("--max-connections", type=_number(int, 1, 10_000, "a number of connections"), default=64,
                   metavar="N", help="serve at most N connections at once; the next gets 503 (default: 64)")
    p.add_argument("--request-timeout", type=_number(float, 0.1, 3600, "a number of seconds"), default=30.0,
                   metavar="SECONDS",
                   help="a request must arrive whole within this time of its first byte, else 408 (default: 30)")
    p.add_argument("--region", default=None, type=_region,
                   help="the region SigV4 signatures must be scoped to (default: env AWS_REGION, "
                   "AWS_DEFAULT_REGION, else us-west-2)")
    p.add_argument("--access-key-id", default=None, metavar="AKID",
                   help=f"verify SigV4 for this key id (or env {SERVE_KEY_ID_ENV}); the secret comes only from "
                   f"env {SERVE_SECRET_ENV}. Without a key, signatures are not checked")
    p.add_argument("--record", default=None, metavar="FILE",
                   help="append every request body received to FILE as a JSON line")
    # SageMaker starts a bring-your-own container as `docker run IMAGE serve`: accept that word and ignore it.
    p.add_argument("sagemaker_serve", nargs="?", choices=["serve"], help=argparse.SUPPRESS)

    p = command("endpoint", _cmd_endpoint, "deploy, inspect or delete the SageMaker endpoint")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    a = actions.add_parser("deploy", help="create or update the endpoint of the deploy: section; wait for InService "
                           "(with os-rerank's handler, package and upload model.tar.gz first)")
    _add_config(a)
    _add_json(a)
    a.add_argument("--dry-run", action="store_true",
                   help="print what deploy would write (S3 upload, model, endpoint config, endpoint, autoscaling) "
                   "and why, reading AWS only")
    a.add_argument("--timeout", type=SECONDS, default=1800.0, metavar="SECONDS",
                   help="how long to wait for InService (default: 1800)")
    a = actions.add_parser("status", help="show the endpoint, its config, model, image, instances and autoscaling")
    _add_config(a)
    _add_json(a)
    a = actions.add_parser("delete", help="delete the endpoint, its endpoint configs, model and autoscaling, and "
                           "the model.tar.gz files os-rerank uploaded for it")
    _add_config(a)
    _add_json(a)

    p = command("local", _cmd_local, "run a real OpenSearch node with ML Commons and neural-search here (no Docker)")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    def local_action(name: str, help_text: str) -> argparse.ArgumentParser:
        a = actions.add_parser(name, help=help_text, description=help_text)
        a.add_argument("--dir", metavar="DIR", help="where nodes live (env OS_RERANK_LOCAL_HOME; default "
                       "~/.local/share/os-rerank/local, /var/lib/os-rerank/local for root)")
        return a

    a = local_action("up", "build (the first time: ~430 MB from Maven) and start a node; wait until it is healthy")
    a.add_argument("--version", default="2.19.1", metavar="X.Y.Z", help="OpenSearch version (default: 2.19.1)")
    a.add_argument("--port", type=_number(int, 1024, 65535, "a port"), metavar="N",
                   help="HTTP port on 127.0.0.1 (default: the node's own, else 9200, or 9201 with --secure)")
    a.add_argument("--secure", action="store_const", const=True, default=None,
                   help="with the security plugin: TLS (its demo CA), basic auth as admin with a generated password")
    a.add_argument("--name", metavar="NAME", help="the node's name (default: plain, or secure with --secure)")
    a.add_argument("--heap", metavar="SIZE", help="JVM heap (default: the node's own, else 1g)")
    a.add_argument("--repository", metavar="URL", help="Maven repository or mirror to download from (env "
                   "OS_RERANK_MAVEN_REPOSITORY; default: the mirror in Maven's settings.xml, else Maven Central)")
    a.add_argument("--fresh", action="store_true", help="remove the node (and its data) and build it again")
    a.add_argument("--timeout", type=SECONDS, default=180.0, metavar="SECONDS",
                   help="how long to wait for the node to be healthy (default: 180)")
    _add_json(a)
    a = local_action("status", "show each local node: version, URL, running or not, memory")
    a.add_argument("--name", metavar="NAME", help="only this node")
    _add_json(a)
    a = local_action("down", "stop a local node (every node without --name)")
    a.add_argument("--name", metavar="NAME", help="only this node")
    a.add_argument("--purge", action="store_true", help="also remove the node's folder and data")
    a = local_action("logs", "print the end of a node's log")
    a.add_argument("--name", metavar="NAME", help="the node (needed when there are several)")
    a.add_argument("-n", "--lines", type=COUNT, default=50, metavar="N", help="how many lines (default: 50)")
    a = local_action("env", "print shell exports that point os-rerank at a node (the password is read from its file)")
    a.add_argument("--name", metavar="NAME", help="the node (needed when there are several)")

    p = command("rotate-credentials", _cmd_rotate_credentials,
                "put fresh AWS credentials into the connector (undeploy, update, deploy, verify)")
    _add_config(p)
    _add_json(p)
    p.add_argument("--no-verify", action="store_true", help="skip the predict roundtrip after deploying")
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    environ: dict[str, str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run os-rerank with `argv`; returns the exit code. Tests pass environ and streams to run it in-process."""
    env = Env(
        environ=dict(os.environ) if environ is None else environ,
        stdout=stdout or sys.stdout,
        stderr=stderr or sys.stderr,
    )
    parser = build_parser()
    try:
        with contextlib.redirect_stdout(env.stdout), contextlib.redirect_stderr(env.stderr):
            args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error argparse already printed
        return int(exc.code or 0)
    try:
        return int(args.handler(args, env))
    except OsRerankError as exc:
        for line in exc.lines():
            env.err(f"os-rerank: error: {line}")
        return exc.exit_code
    except KeyboardInterrupt:
        env.err("os-rerank: interrupted")
        return ExitStatus.INTERRUPTED
    except Exception as exc:  # a bug: one redacted line, the traceback only on request
        if env.environ.get("OS_RERANK_DEBUG"):
            env.err(redact(traceback.format_exc(), env.secrets).rstrip())
        env.err(f"os-rerank: error: unexpected {type(exc).__name__}: {exc}")
        env.err("os-rerank: error: this is a bug in os-rerank; OS_RERANK_DEBUG=1 shows the traceback")
        return ExitStatus.INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
