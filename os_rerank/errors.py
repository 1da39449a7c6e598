"""The one error tree of os-rerank. Only `cli.main` catches these; each maps to a stable exit code."""

from __future__ import annotations


class OsRerankError(Exception):
    """Base of every error os-rerank reports to a user; `fix` says what to do about it."""

    exit_code = 1

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


class ConfigError(OsRerankError):
    """The configuration file or environment is invalid; `problems` holds one line per problem."""

    exit_code = 2

    def __init__(self, problems: list[str], *, fix: str | None = None) -> None:
        super().__init__("\n".join(problems), fix=fix)
        self.problems = problems


class RenderError(OsRerankError):
    """A template or Painless script could not be rendered."""

    exit_code = 3


class ClusterError(OsRerankError):
    """OpenSearch refused or failed a request; `status` is the HTTP status when there was one."""

    exit_code = 4

    def __init__(self, message: str, *, fix: str | None = None, status: int | None = None) -> None:
        super().__init__(message, fix=fix)
        self.status = status


class EndpointError(OsRerankError):
    """The SageMaker (or compatible) endpoint failed or answered in an unexpected shape."""

    exit_code = 5


class VerifyError(OsRerankError):
    """The roundtrip or search check found a difference; `differences` lists them."""

    exit_code = 6

    def __init__(self, message: str, differences: list[str] | None = None, *, fix: str | None = None) -> None:
        super().__init__(message, fix=fix)
        self.differences = differences or []

    def lines(self) -> list[str]:
        return [self.message, *(f"  {d}" for d in self.differences), *([f"fix: {self.fix}"] if self.fix else [])]


class AwsError(OsRerankError):
    """An AWS control-plane call (SageMaker, IAM, Application Auto Scaling, STS) failed."""

    exit_code = 7


class LocalNodeError(OsRerankError):
    """`os-rerank local`: an artifact could not be fetched or checked, or the node could not be built or started."""

    exit_code = 8
