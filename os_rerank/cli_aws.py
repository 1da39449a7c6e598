"""The command handlers of the AWS side: `endpoint deploy|status|delete` and `rotate-credentials`."""

from __future__ import annotations

import argparse

from . import output
from .cli_commands import load
from .errors import ExitStatus
from .output import Env, print_json, progress


def cmd_endpoint(args: argparse.Namespace, env: Env) -> int:
    from .aws import endpoint as aws_endpoint
    from .credentials import chain_secrets

    config = load(args, env)
    env.secrets.update(chain_secrets(config))
    clients = aws_endpoint.aws_clients(config)
    if args.action == "deploy" and args.dry_run:
        from .aws.plan import plan_deploy

        plan = plan_deploy(config, clients)
        if args.json:
            print_json(env, plan.to_json())
        else:
            output.print_endpoint_plan(env, plan)
        return ExitStatus.OK
    if args.action == "deploy":
        result = aws_endpoint.deploy_endpoint(config, clients, on_event=progress(env), timeout=args.timeout)
        if args.json:
            print_json(env, result.to_json())
        else:
            output.print_deployed(env, result)
        return ExitStatus.OK
    if args.action == "status":
        status = aws_endpoint.endpoint_status(config, clients)
        if args.json:
            print_json(env, status)
        else:
            output.print_endpoint_status(env, status)
        return ExitStatus.OK
    deleted = aws_endpoint.delete_endpoint(config, clients, on_event=progress(env))
    if args.json:
        print_json(env, deleted.to_json())
    else:
        output.print_endpoint_deleted(env, deleted)
    return ExitStatus.OK


def cmd_rotate_credentials(args: argparse.Namespace, env: Env) -> int:
    from .credentials import connector_credential, credential_warnings, is_aws_managed
    from .provision.diagnose import open_cluster
    from .provision.rotate import predict_roundtrip, rotate_credentials

    config = load(args, env)
    cred = connector_credential(config)
    env.secrets.update(cred.secrets())
    for warning in credential_warnings(cred, aws_managed=is_aws_managed(config)):
        output.warn(env, warning)
    result = rotate_credentials(open_cluster(config), config, cred, on_event=progress(env),
                                verify=None if args.no_verify else predict_roundtrip)
    if args.json:
        print_json(env, result.to_json())
    else:
        output.print_rotated(env, result)
    return ExitStatus.OK
