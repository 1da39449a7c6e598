"""The command handlers that run something on this machine: `serve` (the local endpoint) and `local` (a real
OpenSearch node)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from . import output
from .errors import ExitStatus, Interrupted, LocalNodeError, UsageError
from .output import Env, print_json, print_lines, progress

SERVE_KEY_ID_ENV = "OS_RERANK_SERVE_ACCESS_KEY_ID"
SERVE_SECRET_ENV = "OS_RERANK_SERVE_SECRET_ACCESS_KEY"
SERVE_MODEL_ENV = "OS_RERANK_SERVE_MODEL"
SERVE_EMBEDDING_MODEL_ENV = "OS_RERANK_SERVE_EMBEDDING_MODEL"
SAGEMAKER_MODEL_DIR = "/opt/ml/model"
SAGEMAKER_PORT_ENV = "SAGEMAKER_BIND_TO_PORT"


def cmd_serve(args: argparse.Namespace, env: Env) -> int:
    import logging

    from .contracts import get_contract
    from .embedding_contracts import get_embedding_contract
    from .server.app import EndpointServer, RecordError
    from .server.embedders import load_embedder
    from .server.scorers import ScorerError, load_scorer

    key_id = args.access_key_id or env.environ.get(SERVE_KEY_ID_ENV)
    secret = env.environ.get(SERVE_SECRET_ENV)
    if bool(key_id) != bool(secret):
        raise UsageError("SigV4 needs both an access key id and its secret",
                         fix=f"set {SERVE_SECRET_ENV} together with --access-key-id / {SERVE_KEY_ID_ENV}")
    if secret:
        env.secrets.add(secret)
    embedding_model = args.embedding_model or env.environ.get(SERVE_EMBEDDING_MODEL_ENV) or None
    if args.embedding_only and embedding_model is None:
        raise UsageError("--embedding-only needs an embedding model",
                         fix=f"pass --embedding-model minilm (or a directory), or set {SERVE_EMBEDDING_MODEL_ENV}")
    scorer = None
    if not args.embedding_only:
        model = args.model or env.environ.get(SERVE_MODEL_ENV) or None
        if model is None and os.path.isfile(os.path.join(SAGEMAKER_MODEL_DIR, "config.json")):
            model = SAGEMAKER_MODEL_DIR  # where SageMaker (and Dockerfile.endpoint's MODEL_ID) put the model
        try:
            scorer = load_scorer(model, max_length=args.max_length, batch_size=args.batch_size,
                                 quantize=args.quantize, threads=args.threads, backend=args.backend)
        except ScorerError as exc:
            raise UsageError(str(exc), fix="pass --model DIR (a save_pretrained() directory) or leave it out"
                             ) from exc
    embedder = None
    if embedding_model is not None:
        try:
            embedder = load_embedder(embedding_model, environ=env.environ, max_length=args.embedding_max_length,
                                     batch_size=args.batch_size, threads=args.threads)
        except ScorerError as exc:
            raise UsageError(str(exc), fix="pass --embedding-model minilm or an embedding model directory") from exc
    port = args.port
    if port is None:
        text = env.environ.get(SAGEMAKER_PORT_ENV) or "8080"
        if not text.isdigit() or not 0 < int(text) < 65536:
            raise UsageError(f"{SAGEMAKER_PORT_ENV}={text!r} is not a port", fix="unset it or pass --port")
        port = int(text)
    region = args.region or env.environ.get("AWS_REGION") or env.environ.get("AWS_DEFAULT_REGION") or "us-west-2"
    try:
        server = EndpointServer(get_contract(args.contract) if scorer is not None else None, scorer, host=args.host,
                                port=port, endpoint_name=args.endpoint_name,
                                credentials={key_id: secret} if key_id and secret else None, region=region,
                                max_body_bytes=args.max_body_bytes, max_documents=args.max_documents,
                                max_connections=args.max_connections, request_timeout=args.request_timeout,
                                record_path=args.record, embedder=embedder,
                                embedding_contract=get_embedding_contract(args.embedding_contract)
                                if embedder is not None else None,
                                embedding_endpoint_name=args.embedding_endpoint_name)
    except ValueError as exc:  # the two models under one endpoint name
        raise UsageError(str(exc), fix="pass a different --embedding-endpoint-name") from None
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
    output.print_serve_banner(env, args, server, key_id=key_id, region=region, key_env=SERVE_KEY_ID_ENV,
                              secret_env=SERVE_SECRET_ENV)
    env.stdout.flush()
    try:
        server.serve_forever()
    finally:
        server_log.removeHandler(handler)
    return ExitStatus.OK


def cmd_local(args: argparse.Namespace, env: Env) -> int:
    from .local import node as local

    home = Path(args.dir).expanduser().absolute() if args.dir else local.default_home(env.environ)
    try:
        return _local_action(args, env, home)
    except OSError as exc:  # a folder or file os-rerank may not touch, a full disk: one line, not a traceback
        where = f" ({exc.filename})" if exc.filename else ""
        raise LocalNodeError(f"{exc.strerror or exc}{where}", fix="check the folder's owner and free space") \
            from None


def _local_action(args: argparse.Namespace, env: Env, home: Path) -> int:
    from .local import node as local
    from .local.layout import ADMIN_USER

    if args.action == "up":
        ask = local.Ask(name=args.name or local.default_name(bool(args.secure)), version=args.version,
                        port=args.port, secure=args.secure, heap=args.heap)
        try:
            result = local.up(ask, home=home, cache_root=local.default_cache(env.environ), environ=env.environ,
                              repository=args.repository, fresh=args.fresh, timeout=args.timeout,
                              progress=progress(env, "local: "))
        except KeyboardInterrupt:
            raise Interrupted("interrupted: the node that was starting is stopped, and no partial download or build "
                              "remains", fix="run `os-rerank local up` again") from None
        if args.json:
            print_json(env, result.to_json())
        else:
            output.print_local_up(env, result, ADMIN_USER)
        return ExitStatus.OK
    if args.action == "env":
        output.print_local_env(env, local.select(home, args.name, one=True)[0], ADMIN_USER)
        return ExitStatus.OK
    if args.action == "status":
        statuses = [local.status(n) for n in local.select(home, args.name)]
        if args.json:
            print_json(env, [s.to_json() for s in statuses])
        else:
            output.print_local_status(env, statuses)
        return ExitStatus.OK
    if args.action == "logs":
        print_lines(env, local.last_lines(local.select(home, args.name, one=True)[0], args.lines))
        return ExitStatus.OK
    for node in local.select(home, args.name):
        output.print_local_down(env, node.name, local.down(node, purge=args.purge))
    return ExitStatus.OK
