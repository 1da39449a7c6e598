"""The command line: parse arguments, load config, call one library function, print what it returns.

Thin by design: the library never prints, progress reaches the terminal through one `on_event` callback
(output.progress, on stderr), every terminal string is in output.py, and only `main` catches `OsRerankError` (one
line per problem, stable exit codes, never a traceback). The parser is in cli_parser.py, the handlers in
cli_commands.py, cli_aws.py and cli_local.py.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from collections.abc import Sequence
from typing import TextIO

from .cli_local import SERVE_KEY_ID_ENV, SERVE_SECRET_ENV
from .cli_parser import build_parser
from .errors import ExitStatus, OsRerankError
from .output import Env, print_bug, print_error, print_interrupted

__all__ = ["SERVE_KEY_ID_ENV", "SERVE_SECRET_ENV", "build_parser", "main"]


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
        print_error(env, exc.lines())
        return exc.exit_code
    except KeyboardInterrupt:
        print_interrupted(env)
        return ExitStatus.INTERRUPTED
    except Exception as exc:  # a bug: one redacted line, the traceback only on request
        print_bug(env, exc, traceback.format_exc() if env.environ.get("OS_RERANK_DEBUG") else None)
        return ExitStatus.INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
