"""The one error tree of os-rerank and its one exit-status table. Only `cli.main` catches these errors.

Every exit status os-rerank can end with is an `ExitStatus`; each error class carries one. The README's table is
`exit_status_table()` (a test keeps it so).
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """What an exit status means. The docstring of each member is its README line."""

    OK = 0
    USAGE = 2
    RENDER = 3
    CLUSTER = 4
    ENDPOINT = 5
    VERIFY = 6
    AWS = 7
    LOCAL = 8
    GATE = 9
    INTERNAL = 70
    INTERRUPTED = 130


MEANINGS: dict[ExitStatus, str] = {
    ExitStatus.OK: "done",
    ExitStatus.USAGE: "bad usage or input: an argument, the config file, an environment override, a documents, "
                      "queries or judgments file (the message names the field, file and line)",
    ExitStatus.RENDER: "a template or Painless script could not be rendered",
    ExitStatus.CLUSTER: "OpenSearch refused or failed a request, or holds something os-rerank will not guess about",
    ExitStatus.ENDPOINT: "the SageMaker (or compatible) endpoint failed or answered in another shape",
    ExitStatus.VERIFY: "verification found a difference (predict through OpenSearch vs the endpoint, the search)",
    ExitStatus.AWS: "an AWS call failed (SageMaker, S3, IAM, Application Auto Scaling, STS)",
    ExitStatus.LOCAL: "`os-rerank local`: an artifact not served or not matching its checksum, no suitable Java, a "
                      "taken port, a node that would not start",
    ExitStatus.GATE: "the relevance gate failed: reranking did not gain, keep or stay within what `eval "
                     "--fail-under / --baseline / --max-p95-ms` or `promote --require-gain` asked",
    ExitStatus.INTERNAL: "a bug in os-rerank: one line, and the traceback with OS_RERANK_DEBUG=1",
    ExitStatus.INTERRUPTED: "interrupted (Ctrl-C); what finished and what did not is said",
}


# The fix for "no AWS credentials", wherever boto3 finds none (connector, endpoint, SigV4 to OpenSearch, AWS calls).
AWS_CREDENTIALS_FIX = (
    "configure the boto3 chain: AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or an instance role")


def exit_status_table() -> str:
    """The README's exit-status table, from `MEANINGS`."""
    rows = ["| status | meaning |", "|---|---|"]
    rows += [f"| {int(status)} | {MEANINGS[status]} |" for status in ExitStatus]
    return "\n".join(rows)


class OsRerankError(Exception):
    """Base of every error os-rerank reports to a user; `fix` says what to do about it.

    Raised as such only for what os-rerank did not foresee (a bug), hence INTERNAL; every expected failure is one of
    the subclasses.
    """

    exit_code: int = ExitStatus.INTERNAL

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def lines(self) -> list[str]:
        """The message lines, then the fix, as the CLI prints them."""
        out = self.message.splitlines() or [""]
        if self.fix:
            out.append(f"fix: {self.fix}")
        return out


class UsageError(OsRerankError):
    """A command-line argument (or what it names) cannot be used."""

    exit_code = ExitStatus.USAGE


class ConfigError(OsRerankError):
    """The configuration file, an environment override or an input file is invalid; one line per problem."""

    exit_code = ExitStatus.USAGE

    def __init__(self, problems: list[str], *, fix: str | None = None) -> None:
        super().__init__("\n".join(problems), fix=fix)
        self.problems = problems


class RenderError(OsRerankError):
    """A template or Painless script could not be rendered."""

    exit_code = ExitStatus.RENDER


class ClusterError(OsRerankError):
    """OpenSearch refused or failed a request; `status` is the HTTP status when there was one."""

    exit_code = ExitStatus.CLUSTER

    def __init__(self, message: str, *, fix: str | None = None, status: int | None = None) -> None:
        super().__init__(message, fix=fix)
        self.status = status


class EndpointError(OsRerankError):
    """The SageMaker (or compatible) endpoint failed or answered in an unexpected shape."""

    exit_code = ExitStatus.ENDPOINT


class VerifyError(OsRerankError):
    """The roundtrip or search check found a difference; `differences` lists them."""

    exit_code = ExitStatus.VERIFY

    def __init__(self, message: str, differences: list[str] | None = None, *, fix: str | None = None) -> None:
        super().__init__(message, fix=fix)
        self.differences = differences or []

    def lines(self) -> list[str]:
        return [self.message, *(f"  {d}" for d in self.differences), *([f"fix: {self.fix}"] if self.fix else [])]


class AwsError(OsRerankError):
    """An AWS call (SageMaker, S3, IAM, Application Auto Scaling, STS) failed."""

    exit_code = ExitStatus.AWS


class LocalNodeError(OsRerankError):
    """`os-rerank local`: an artifact could not be fetched or checked, or the node could not be built or started."""

    exit_code = ExitStatus.LOCAL


class Interrupted(OsRerankError):
    """Ctrl-C (or SIGTERM) stopped a command; the message says what was left how."""

    exit_code = ExitStatus.INTERRUPTED
