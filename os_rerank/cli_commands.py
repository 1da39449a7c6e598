"""The command handlers of the cluster side: validate, render, plan, setup, verify, status, teardown, promote,
rollback, workbench-export, search and eval.

Each one parses nothing and prints nothing itself: it loads the config, calls one library function and hands what
comes back to output.py. Errors go up to `cli.main`, the one boundary.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

from . import output
from .config import Config, load_config
from .errors import ExitStatus, UsageError
from .output import Env, print_json, print_lines, print_rendered, progress


def load(args: argparse.Namespace, env: Env) -> Config:
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
        output.warn_unverified_tls(env)
    return config


# --- validate / render ----------------------------------------------------------------------------------------------


def cmd_validate(args: argparse.Namespace, env: Env) -> int:
    config = load(args, env)
    from .provision.render import load_documents

    docs = load_documents(config)  # a bad documents file is a config problem too
    output.print_validated(env, args.config, config, len(docs))
    return ExitStatus.OK


def cmd_render(args: argparse.Namespace, env: Env) -> int:
    from .provision.render import render_requests

    config = load(args, env)
    version = _render_version(args.opensearch_version, env)
    if args.what in ("role", "settings"):
        print_rendered(env, [_admin_request(config, args.what, version)])
        return ExitStatus.OK
    if args.what == "iam":
        from .aws.iam import iam_requests

        print_rendered(env, iam_requests(config, args.operator_arn))
        return ExitStatus.OK
    if args.operator_arn is not None:
        raise UsageError("--operator-arn goes with --what iam")
    if args.what == "dense":  # the dense first stage (config `embedding`, dense_render.py)
        from .provision.dense_render import render_requests as render_dense

        print_rendered(env, render_dense(config, version=version))
        return ExitStatus.OK
    print_rendered(env, render_requests(config, what=args.what, version=version))
    return ExitStatus.OK


def _admin_request(config: Config, what: str, version: tuple[int, int, int]) -> Any:
    """What an admin applies: the operator's security role, or the cluster settings setup needs."""
    from .provision.permissions import ROLE_NAME, role_body
    from .provision.plan import desired_state, settings_body
    from .provision.preflight import is_private_host
    from .provision.render import Rendered, dumps

    if what == "role":
        return Rendered("role", "PUT", f"/_plugins/_security/api/roles/{ROLE_NAME}", dumps(role_body(config)))
    desired = desired_state(config, version, endpoint_private=is_private_host(config.sagemaker.connector_url))
    return Rendered("settings", "PUT", "/_cluster/settings", dumps(settings_body(desired)))


def _render_version(text: str, env: Env) -> tuple[int, int, int]:
    """--opensearch-version: refused below 2.12; above the newest os-rerank knows, rendered as that one, saying so."""
    from .errors import RenderError
    from .provision.render import MIN_VERSION, NEWEST_VERSION, format_version, parse_version

    try:
        version = parse_version(text)
    except RenderError as exc:
        raise UsageError(f"--opensearch-version: {exc.message}", fix=exc.fix) from None
    if version < MIN_VERSION:
        raise UsageError(f"--opensearch-version {text}: os-rerank needs OpenSearch {format_version(MIN_VERSION)} or "
                         "newer (remote text_similarity models and the rerank processor start there)")
    if version > NEWEST_VERSION:
        output.note_newer_version(env, format_version(version), format_version(NEWEST_VERSION))
    return version


# --- provisioning ---------------------------------------------------------------------------------------------------


def cmd_plan(args: argparse.Namespace, env: Env) -> int:
    from .provision.diagnose import open_cluster
    from .provision.plan_actions import plan_lines
    from .provision.setup import plan_setup

    config = load(args, env)
    plan = plan_setup(open_cluster(config), config)
    if args.json:
        print_json(env, plan.to_dict())
    else:
        print_lines(env, plan_lines(plan))
    return ExitStatus.OK


def cmd_setup(args: argparse.Namespace, env: Env) -> int:
    from .credentials import connector_credential, credential_warnings, is_aws_managed
    from .provision.diagnose import open_cluster
    from .provision.setup import run_setup
    from .provision.verify import check

    config = load(args, env)
    credential = connector_credential(config)
    env.secrets.update(credential.secrets())  # before anything can print
    for warning in credential_warnings(credential, aws_managed=is_aws_managed(config)):
        output.warn(env, warning)
    cluster = open_cluster(config)
    on_event = None if args.json else progress(env)
    result = run_setup(cluster, config, credential, on_event=on_event, run_verify=not args.no_verify,
                       deploy_timeout=args.timeout)
    if args.json:
        print_json(env, result.to_dict())
    else:
        output.print_setup(env, result)
    if result.verify is not None:
        check(result.verify)
    return ExitStatus.OK


def cmd_verify(args: argparse.Namespace, env: Env) -> int:
    from .credentials import chain_secrets
    from .provision.diagnose import open_cluster
    from .provision.setup import run_verify
    from .provision.verify import check

    config = load(args, env)
    env.secrets.update(chain_secrets(config))
    report = run_verify(open_cluster(config), config)
    if args.json:
        print_json(env, report.to_dict())
    else:
        print_lines(env, report.lines())
    check(report)
    return ExitStatus.OK


def cmd_status(args: argparse.Namespace, env: Env) -> int:
    from .provision.diagnose import open_cluster
    from .provision.setup import run_status
    from .provision.status import HEADERS

    config = load(args, env)
    rows = run_status(open_cluster(config), config)
    if args.json:
        print_json(env, [r.to_dict() for r in rows])
    else:
        output.print_status(env, rows, HEADERS)
    return ExitStatus.OK


def cmd_teardown(args: argparse.Namespace, env: Env) -> int:
    from .errors import ClusterError
    from .provision.diagnose import open_cluster
    from .provision.teardown import teardown

    config = load(args, env)
    if args.dry_run:
        from .provision.teardown import plan_teardown

        plan = plan_teardown(open_cluster(config), config, keep_index=args.keep_index)
        if args.json:
            print_json(env, plan.to_dict())
        else:
            output.print_lines(env, plan.lines())
        if plan.failed:
            raise ClusterError(f"teardown --dry-run: {len(plan.failed)} step(s) could not be planned: "
                               + "; ".join(f"{a.resource} {a.id or a.name}" for a in plan.failed),
                               fix="fix the causes above and plan again")
        if not args.json:
            output.print_teardown_planned(env)
        return ExitStatus.OK
    on_event = None if args.json else progress(env)
    report = teardown(open_cluster(config), config, keep_index=args.keep_index, on_event=on_event)
    if args.json:
        print_json(env, report.to_dict())
    else:
        output.print_teardown(env, report)
    if report.failed:
        raise ClusterError(f"teardown: {len(report.failed)} step(s) failed: "
                           + "; ".join(f"{s.resource} {s.id or s.name}" for s in report.failed),
                           fix="fix the causes above and run `os-rerank teardown` again (it skips what is gone)")
    if not args.json:
        output.print_teardown_done(env)
    return ExitStatus.OK


# --- promote / rollback ---------------------------------------------------------------------------------------------


def cmd_promote(args: argparse.Namespace, env: Env) -> int:
    from .credentials import chain_secrets
    from .provision.diagnose import open_cluster
    from .provision.promote import change_lines, check_index_name, run_promote, run_rollback

    config = load(args, env)
    env.secrets.update(chain_secrets(config))
    index = check_index_name(args.index or config.index.name)
    cluster = open_cluster(config)
    on_event = None if args.json else progress(env)
    if args.command == "rollback":
        result = run_rollback(cluster, config, index=index, dry_run=args.dry_run, on_event=on_event)
    else:
        gate = _promote_gate(args, env, cluster, config) if args.require_gain is not None else None
        result = run_promote(cluster, config, index=index, dry_run=args.dry_run, on_event=on_event, gate=gate,
                             allow_failing_searches=args.allow_failing_searches)
    if args.json:
        print_json(env, result.to_dict())
    else:
        output.print_promote(env, result, change_lines(result.change, dry_run=result.dry_run))
    if result.gate is not None and not result.gate.passed:
        raise result.gate.error()
    return ExitStatus.OK


def _promote_gate(args: argparse.Namespace, env: Env, cluster: Any, config: Config) -> Callable[[], Any]:
    """The gate promote runs before it writes: eval at --depth on --queries/--qrels, --metric gain ≥ --require-gain."""
    from .search.eval import check_depths, run_eval
    from .search.eval_set import load_corpus, load_qrels, load_queries
    from .search.gate import evaluate_gate

    if not args.queries or not args.qrels:
        raise UsageError("--require-gain needs --queries FILE and --qrels FILE to measure the gain on")
    check_depths(config, [args.depth])
    queries, qrels = load_queries(args.queries), load_qrels(args.qrels)  # bad files fail before anything runs
    corpus = (load_corpus(args.corpus, config.pipeline.document_fields, config.index.fields)
              if args.corpus else None)

    def gate() -> Any:
        report = run_eval(cluster, config, queries, qrels, depths=[args.depth], corpus=corpus,
                          corpus_name=args.corpus, on_event=progress(env))
        return evaluate_gate(report.to_json(), metric=args.metric, min_gain=args.require_gain)

    return gate


def cmd_workbench_export(args: argparse.Namespace, env: Env) -> int:
    from .provision.diagnose import open_cluster
    from .provision.preflight import read_cluster_info
    from .search.eval_set import load_qrels, load_queries
    from .search.workbench import apply_export, check_name, plan_export

    config = load(args, env)
    name = check_name(args.name)
    queries, qrels = load_queries(args.queries), load_qrels(args.qrels)
    cluster = open_cluster(config)
    export = plan_export(cluster, read_cluster_info(cluster), name, queries, qrels, dry_run=args.dry_run)
    if not args.dry_run:
        export = apply_export(cluster, export)
    if args.json:
        print_json(env, export.to_dict())
    else:
        print_lines(env, export.lines())
    return ExitStatus.OK


# --- search / eval --------------------------------------------------------------------------------------------------


def cmd_search(args: argparse.Namespace, env: Env) -> int:
    from .provision.diagnose import open_cluster
    from .search.query import format_search, load_query_json, run_search

    config = load(args, env)
    query, base = load_query_json(args.query_json) if args.query_json else (None, None)
    result = run_search(
        open_cluster(config), config, args.query, size=args.size, window=args.window, min_score=args.min_score,
        query=query, base=base, compare=args.compare, first_stage=args.first_stage,
    )
    if args.json:
        print_json(env, result.to_json())
        return ExitStatus.OK
    output.print_search(env, result.notes, format_search(result, config.pipeline.document_fields))
    return ExitStatus.OK


def cmd_eval(args: argparse.Namespace, env: Env) -> int:
    from .provision.diagnose import open_cluster
    from .search.eval import run_eval
    from .search.eval_report import format_report, plot_report, require_matplotlib
    from .search.eval_set import load_corpus, load_qrels, load_queries, parse_depths
    from .search.gate import load_baseline

    config = load(args, env)
    if args.plot:
        require_matplotlib()
    depths = parse_depths(args.depths)
    baseline = load_baseline(args.baseline, depths) if args.baseline else None  # a bad file fails before any search
    queries = load_queries(args.queries)
    qrels = load_qrels(args.qrels)
    corpus = (load_corpus(args.corpus, config.pipeline.document_fields, config.index.fields)
              if args.corpus else None)
    report = run_eval(open_cluster(config), config, queries, qrels, depths=depths, corpus=corpus,
                      corpus_name=args.corpus, on_event=progress(env))
    if args.plot:
        plot_report(report, args.plot)
        output.note_plot(env, args.plot)
    data = report.to_json()
    extra = _eval_gate_and_capacity(args, data, depths, baseline)
    gate = extra.pop("gate_result", None)
    gate_lines = extra.pop("gate_lines", [])
    data.update(extra)
    if args.json:
        print_json(env, data)
    else:
        output.print_eval(env, format_report(report), extra, gate_lines)
    if gate is not None and not gate.passed:
        raise gate.error()
    return ExitStatus.OK


def _eval_gate_and_capacity(args: argparse.Namespace, data: dict[str, Any], depths: Sequence[int],
                            baseline: dict[str, Any] | None) -> dict[str, Any]:
    """The gate (when --fail-under / --baseline / --max-p95-ms asked for it) and the capacity note (--target-qps)."""
    from .search.capacity import capacity_note, pairs_per_second_from_eval
    from .search.gate import evaluate_gate

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
            out["capacity"] = output.capacity_unmeasured(depth)
    if args.fail_under is None and args.baseline is None and args.max_p95_ms is None:
        return out
    gate = evaluate_gate(data, metric=args.metric, min_gain=args.fail_under, baseline=baseline,
                         max_drop=args.max_drop, max_p95_ms=args.max_p95_ms)
    out["gate"] = gate.to_json()
    out["gate_lines"] = gate.lines()
    out["gate_result"] = gate
    return out
