"""Everything os-rerank prints goes through here: tables, JSON, progress events, and secret redaction."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from .events import Event, OnEvent

if TYPE_CHECKING:  # annotations only: render imports jinja2, which `--help` and serve do not need
    from .provision.render import Rendered


@dataclass
class Env:
    """The command's world (httpie's Environment): environment variables and the two output streams."""

    environ: Mapping[str, str]
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    # Values that must never be printed (AWS keys, tokens, the password); filled as they become known.
    secrets: set[str] = field(default_factory=set)

    def out(self, text: str = "", *, raw: bool = False) -> None:
        """Print a line (secrets redacted; control characters made visible unless `raw`, for --json)."""
        text = redact(text, self.secrets)
        print(text if raw else visible(text), file=self.stdout)

    def err(self, text: str = "") -> None:
        print(visible(redact(text, self.secrets)), file=self.stderr)


# What must not reach a terminal as is from data (documents, cluster messages): C0 controls but tab and newline
# (ESC starts escape sequences, BEL rings, CR overwrites), DEL, C1 controls, and the bidirectional overrides and
# isolates that reorder what is shown (U+202E makes "exe.txt" read "txt.exe").
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    """`text` with every terminal-unsafe character written as its escape (\\x1b, \\u202e)."""
    return _UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}",
                       text)


# Shapes of secrets, redacted even when we were not told the value (defence in depth): AWS key ids; the password in
# a URL's user-info (`https://user:pw@host`); and a value assigned to a secret-sounding key, when it is quoted or
# follows `=` (`"password": "x"`, `secret_key=x`). A bare `password: x` is left alone: that is how os-rerank's own
# messages name a field ("opensearch.auth.password: secrets are never read ..."), and a known password is redacted
# by value anyway.
_SECRET_PATTERNS = [
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*:)[^@/\s]+@"),
    re.compile(r"(?i)(aws_secret_access_key|secret_key|session_token|password)"
               r"(\"\s*:\s*\"|\s*=\s*\"?|:\s*\")(?!\$\()([^\s\",}]+)"),
]


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every known secret value, and anything shaped like a secret (above), replaced by ***."""
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, "***")
    text = _SECRET_PATTERNS[0].sub("***", text)
    text = _SECRET_PATTERNS[1].sub(lambda m: m.group(1) + "***@", text)
    return _SECRET_PATTERNS[2].sub(lambda m: m.group(1) + m.group(2) + "***", text)


def progress(env: Env, prefix: str = "") -> OnEvent:
    """The callback a command hands the library: each event one line on stderr, so stdout keeps only the result."""
    def show(event: Event) -> None:
        env.err(prefix + event.line())
    return show


def print_json(env: Env, value: Any) -> None:
    """--json: the data exactly (JSON escapes every control character itself), secrets redacted."""
    env.out(json.dumps(value, ensure_ascii=False, indent=2), raw=True)


def print_rendered(env: Env, rendered: Sequence[Rendered]) -> None:
    """Each request as `METHOD path` then its body, separated by blank lines (render's output)."""
    for i, item in enumerate(rendered):
        if i:
            env.out()
        env.out(f"# {item.what}")
        env.out(f"{item.method} {item.path}")
        env.out(item.body.rstrip("\n"))


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """A plain left-aligned text table; wide Unicode counts as two columns so Korean and Hindi line up."""
    cells = [[str(h) for h in headers], *[[("" if c is None else str(c)) for c in row] for row in rows]]
    widths = [max(display_width(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append("  ".join(pad(c, widths[i]) for i, c in enumerate(row)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def display_width(text: str) -> int:
    import unicodedata

    width = 0
    for ch in text:
        if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def pad(text: str, width: int) -> str:
    return text + " " * max(0, width - display_width(text))


def snippet(text: str, limit: int = 80) -> str:
    """One line of at most `limit` display columns: whitespace folded, an ellipsis where cut."""
    flat = " ".join(str(text).split())
    if display_width(flat) <= limit:
        return flat
    out, width = [], 0
    for ch in flat:
        w = display_width(ch)
        if width + w > limit - 1:
            break
        out.append(ch)
        width += w
    return "".join(out) + "…"


# --- the error boundary's lines (cli.main) --------------------------------------------------------------------------


def print_error(env: Env, lines: Iterable[str]) -> None:
    """An OsRerankError: one `os-rerank: error:` line per problem, then its fix."""
    for line in lines:
        env.err(f"os-rerank: error: {line}")


def print_interrupted(env: Env) -> None:
    env.err("os-rerank: interrupted")


def print_bug(env: Env, exc: BaseException, traceback_text: str | None) -> None:
    """An unexpected exception: one redacted line (the traceback first, when asked for with OS_RERANK_DEBUG)."""
    if traceback_text is not None:
        env.err(redact(traceback_text, env.secrets).rstrip())
    env.err(f"os-rerank: error: unexpected {type(exc).__name__}: {exc}")
    env.err("os-rerank: error: this is a bug in os-rerank; OS_RERANK_DEBUG=1 shows the traceback")


def usage_error(prog: str, message: str) -> str:
    """argparse's usage error in os-rerank's one-line form (argparse writes it itself)."""
    return f"os-rerank: error: {prog}: {message}\nos-rerank: error: fix: see `{prog} --help`\n"


# --- what each command prints: the command line's handlers hand their results to these ---------------------------


def print_lines(env: Env, lines: Iterable[str]) -> None:
    for line in lines:
        env.out(line)


def warn(env: Env, text: str) -> None:
    env.err(f"os-rerank: warning: {text}")


def note(env: Env, text: str) -> None:
    env.err(f"os-rerank: note: {text}")


def warn_unverified_tls(env: Env) -> None:
    warn(env, "opensearch.verify_certs is false: the cluster's certificate is not checked, so the password and "
         "everything sent can be read by whoever sits in between; set opensearch.ca_certs (OPENSEARCH_CA_CERTS) to "
         "the cluster's CA instead")


def note_newer_version(env: Env, asked: str, newest: str) -> None:
    note(env, f"{asked} is newer than the newest version os-rerank knows ({newest}); rendering what {newest} takes")


def print_validated(env: Env, path: str, config: Any, documents: int) -> None:
    """`validate`: what the config describes."""
    sm = config.sagemaker
    env.out(f"{path}: ok")
    env.out(f"  opensearch  {config.opensearch.url} (auth: {config.opensearch.auth.type})")
    env.out(f"  endpoint    {sm.name} in {sm.region}, contract {sm.contract}")
    env.out(f"  connector   {sm.connector_url}")
    env.out(f"  index       {config.index.name} ({documents} sample documents)")
    env.out(f"  pipeline    {config.pipeline.name} over {', '.join(config.pipeline.document_fields)}")


def print_setup(env: Env, result: Any) -> None:
    """`setup`'s summary, then the verify report."""
    if result.writes == 0:
        env.out("No changes. The cluster already matches the config (0 writes).")
    else:
        env.out(f"Setup applied: {len(result.applied.steps)} steps, {result.writes} write requests.")
    print_lines(env, result.verify.lines() if result.verify else [])


def print_status(env: Env, rows: Sequence[Any], headers: Sequence[str]) -> None:
    env.out(table([(r.resource, r.name, r.id, r.state) for r in rows], headers))


def print_teardown(env: Env, report: Any) -> None:
    """`teardown`'s notes (the steps went to stderr as they happened)."""
    for text in report.notes:
        note(env, text)


def print_teardown_planned(env: Env) -> None:
    env.out("Teardown plan: nothing was sent.")


def print_teardown_done(env: Env) -> None:
    env.out("Teardown complete.")


def print_promote(env: Env, result: Any, change_lines: Sequence[str]) -> None:
    """`promote` / `rollback`: the gate's verdict, then the change (or why nothing was sent)."""
    print_lines(env, result.gate.lines() if result.gate is not None else [])
    if result.gate is not None and not result.gate.passed:
        env.out(f"{result.change.command}: refused by the gate; nothing sent")
        return
    print_lines(env, change_lines)
    if result.writes:
        env.out(f"{result.change.command.capitalize()} applied: {result.writes} write requests.")


def print_search(env: Env, notes: Sequence[str], text: str) -> None:
    for item in notes:
        note(env, item)
    env.out(text)


def note_plot(env: Env, path: str) -> None:
    env.err(f"eval: plot written to {path}")


def print_eval(env: Env, report: str, extra: Mapping[str, Any], gate_lines: Sequence[str]) -> None:
    env.out(report)
    print_lines(env, ([extra["capacity"]["line"]] if extra.get("capacity") else []) + list(gate_lines))


def capacity_unmeasured(depth: int) -> dict[str, str]:
    """The capacity note when reranking added no latency to measure."""
    return {"line": f"capacity: reranking added no measurable latency at depth {depth}; measure pairs/s with "
                    "bench/serve_bench.py instead"}


def print_serve_banner(env: Env, args: Any, server: Any, *, key_id: str | None, region: str, key_env: str,
                       secret_env: str) -> None:
    """`serve`: what listens where, and how it checks requests (`args`: serve's parsed options)."""
    if server.reranker is not None:
        extra = server.reranker.extra_path
        env.out(f"scorer    {server.reranker.scorer.name}")
        env.out(f"contract  {args.contract} (POST /invocations{', ' + extra if extra else ''})")
        env.out(f"endpoint  POST /endpoints/{args.endpoint_name}/invocations")
    if server.embedding is not None:
        paths = [p for p in ("/invocations" if server.reranker is None else None, server.embedding.extra_path) if p]
        env.out(f"embedder  {server.embedding.embedder.name}")
        env.out(f"contract  {args.embedding_contract}" + (f" (POST {', '.join(paths)})" if paths else ""))
        env.out(f"endpoint  POST /endpoints/{args.embedding_endpoint_name}/invocations")
    env.out(f"sigv4     verified for access key {key_id}, region {region}, on every POST route" if key_id else
            f"sigv4     NOT verified (set {key_env} and {secret_env} to verify)")
    env.out(f"limits    {args.max_body_bytes} bytes, {args.max_documents} documents (or texts) per request; "
            f"{args.max_connections} connections; {args.request_timeout:g} s to send a request")
    if args.record:
        env.out(f"record    appending each request body to {args.record}")
    env.out(f"listening on {server.url}")


def print_endpoint_plan(env: Env, plan: Any) -> None:
    """`endpoint deploy --dry-run`: what would be written, and why."""
    for warning in plan.warnings:
        env.err(f"warning: {warning}")
    env.out(f"endpoint {plan.endpoint_name}: plan ({plan.handler} handler); nothing was written")
    env.out(f"  model     {plan.model_name}")
    env.out(f"  config    {plan.config_name}")
    if plan.archive is not None:
        env.out(f"  data      {plan.archive['url']} ({plan.archive['size']} bytes, "
                f"{len(plan.archive['members'])} files, sha256 {plan.archive['sha256'][:16]})")
    env.out(table([[s.operation, s.target, s.reason] for s in plan.steps], ["operation", "target", "why"]))


def print_deployed(env: Env, result: Any) -> None:
    """`endpoint deploy`: the endpoint and what was written."""
    env.out(f"endpoint {result.endpoint_name}: {result.outcome}, {result.status}")
    env.out(f"  model     {result.model_name}")
    env.out(f"  config    {result.config_name} ({result.instance_count} x {result.instance_type})")
    env.out(f"  image     {result.image_uri}")
    if result.model_data_url:
        env.out(f"  data      {result.model_data_url}")
    env.out(f"  writes    {', '.join(result.writes) or 'none'}")


def print_endpoint_status(env: Env, status: Mapping[str, Any]) -> None:
    rows = [[key, _status_cell(value)] for key, value in status.items() if value is not None]
    env.out(table(rows, ["field", "value"]))


def _status_cell(value: object) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items() if v is not None)
    if isinstance(value, list):
        return "; ".join(str(v) for v in value) or "none"
    return str(value)


def print_endpoint_deleted(env: Env, deleted: Any) -> None:
    for item in deleted.deleted:
        env.out(f"deleted   {item}")
    for item in deleted.missing:
        env.out(f"missing   {item} (nothing to delete)")


def print_rotated(env: Env, result: Any) -> None:
    env.out(f"connector {result.connector_id}: credential updated ({result.credential_kind}); "
            f"models {', '.join(result.model_ids) or 'none'}; verified: {'yes' if result.verified else 'no'}")


def print_local_up(env: Env, result: Any, admin_user: str) -> None:
    """`local up`: the node, where it is, and how to point os-rerank at it."""
    node = result.node
    env.out(f"node {node.name}: {result.outcome} in {result.seconds:.1f}s (pid {result.pid})")
    lines = [f"  url       {node.url}", f"  version   OpenSearch {node.version} with ML Commons, neural-search, "
             f"k-NN{', security' if node.secure else ''} (Java {node.java_version}, heap {node.heap})",
             f"  folder    {node.folder}"]
    if node.secure:
        lines += [f"  ca        {node.ca_certs}  (opensearch.ca_certs, or OPENSEARCH_CA_CERTS)",
                  f"  user      {admin_user}  (OPENSEARCH_USERNAME)",
                  f"  password  in {node.password_file}  (OPENSEARCH_PASSWORD; never printed)",
                  f"  env       eval \"$(os-rerank local env --name {node.name})\" sets all of these"]
    print_lines(env, lines)
    env.out(f"stop it with: os-rerank local down --name {node.name}")


def print_local_env(env: Env, node: Any, admin_user: str) -> None:
    """`local env`: shell lines that point os-rerank at the node; the password is read from its file, never printed."""
    import shlex

    lines = [f"export OPENSEARCH_URL={shlex.quote(node.url)}"]
    if node.secure:
        lines += [f"export OPENSEARCH_USERNAME={admin_user}",
                  f"export OPENSEARCH_PASSWORD=\"$(cat {shlex.quote(str(node.password_file))})\"",
                  f"export OPENSEARCH_CA_CERTS={shlex.quote(str(node.ca_certs))}"]
    else:
        lines += ["unset OPENSEARCH_USERNAME OPENSEARCH_PASSWORD OPENSEARCH_CA_CERTS"]
    print_lines(env, lines)


def print_local_status(env: Env, statuses: Sequence[Any]) -> None:
    rows = [(s.node.name, s.node.version + (" secured" if s.node.secure else ""), s.node.url, s.state,
             s.pid or "-", f"{s.rss / 1e6:.0f} MB" if s.rss else "-") for s in statuses]
    env.out(table(rows, ("name", "version", "url", "state", "pid", "rss")))


def print_local_down(env: Env, name: str, outcome: str) -> None:
    env.out(f"node {name}: {outcome}")
