"""The command line: parse arguments, load config, call one library function, print what it returns.

Thin by design: the library never prints, progress reaches the terminal through `on_event` callbacks, and only
`main` catches `OsRerankError` (one line per problem, stable exit codes, never a traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from . import __version__
from .config import ENV_OVERRIDES, Config, load_config
from .contracts import CONTRACT_NAMES
from .errors import OsRerankError
from .output import Env, print_rendered

Handler = Callable[[argparse.Namespace, Env], int]

EXIT_OK = 0
EXIT_USAGE = 2  # argparse's own code for bad arguments; ConfigError shares it
EXIT_INTERRUPTED = 130


def _config(args: argparse.Namespace, env: Env) -> Config:
    config = load_config(args.config, env.environ)
    if config.password is not None:
        env.secrets.add(config.password.get_secret_value())
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
    from .render import parse_version, render_requests

    config = _config(args, env)
    version = parse_version(args.opensearch_version)
    print_rendered(env, render_requests(config, what=args.what, version=version))
    return EXIT_OK


# --- provisioning (issue 4) ---------------------------------------------------------------------------------------


def _not_built(name: str) -> Handler:
    def handler(args: argparse.Namespace, env: Env) -> int:
        raise OsRerankError(f"`os-rerank {name}` is not built yet")

    return handler


_cmd_plan = _not_built("plan")
_cmd_setup = _not_built("setup")
_cmd_verify = _not_built("verify")
_cmd_status = _not_built("status")
_cmd_teardown = _not_built("teardown")

# --- search / eval (issue 5) ----------------------------------------------------------------------------------------

_cmd_search = _not_built("search")
_cmd_eval = _not_built("eval")

# --- the local endpoint (issue 3) -----------------------------------------------------------------------------------

_cmd_serve = _not_built("serve")

# --- the AWS side (issue 7) -----------------------------------------------------------------------------------------

_cmd_endpoint = _not_built("endpoint")
_cmd_rotate_credentials = _not_built("rotate-credentials")


# --- the parser -----------------------------------------------------------------------------------------------------


def _add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", default="config.yaml", metavar="FILE",
                   help="the YAML configuration (default: config.yaml)")


def _add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output (secrets redacted)")


def build_parser() -> argparse.ArgumentParser:
    overrides = "\n".join(f"  {k:<20} {v}" for k, v in ENV_OVERRIDES.items())
    parser = argparse.ArgumentParser(
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
    p.add_argument("--what", default="all", choices=["connector", "model", "index", "pipeline", "all"])
    p.add_argument("--opensearch-version", default="3.8.0", metavar="X.Y.Z",
                   help="render for this OpenSearch / ML Commons version (default: the newest known, 3.8.0)")

    p = command("plan", _cmd_plan, "show what `setup` would change, reading the cluster only")
    _add_config(p)
    _add_json(p)

    p = command("setup", _cmd_setup, "create or update everything, then verify it end to end")
    _add_config(p)
    _add_json(p)

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
    p.add_argument("query", help="the query text")

    p = command("eval", _cmd_eval, "measure what reranking buys: nDCG, MRR, recall and latency")
    _add_config(p)
    _add_json(p)

    p = command("serve", _cmd_serve, "run a local SageMaker-compatible cross-encoder endpoint")
    p.add_argument("--contract", default="hf-text-classification", choices=CONTRACT_NAMES)

    p = command("endpoint", _cmd_endpoint, "deploy, inspect or delete the SageMaker endpoint")
    _add_config(p)

    p = command("rotate-credentials", _cmd_rotate_credentials,
                "put fresh AWS credentials into the connector (undeploy, update, deploy, verify)")
    _add_config(p)
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
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
