"""Reading a config file: bounded YAML with line numbers, secrets refused, environment overrides, one-line errors.

Nothing here knows the config's fields: config.py's `load_config` validates what this module reads against its
models and reports each problem with `format_error`, naming the file and line (or the environment variable).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr

from .errors import ConfigError

# The environment variables that override the file, in the order the README documents them.
ENV_OVERRIDES: dict[str, str] = {
    "OPENSEARCH_URL": "opensearch.url",
    "OPENSEARCH_USERNAME": "opensearch.auth.username (and auth.type basic)",
    "OPENSEARCH_PASSWORD": "the basic-auth password (only ever from the environment)",
    "OPENSEARCH_CA_CERTS": "opensearch.ca_certs (the CA bundle that verifies the cluster's certificate)",
    "AWS_REGION": "sagemaker.region, and opensearch.auth.region for aws_sigv4",
    "AWS_PROFILE": "aws.profile",
}

# Keys that would put a secret in the file; each is refused with the place it should come from.
_SECRET_KEYS = {
    "password": "set OPENSEARCH_PASSWORD in the environment",
    "access_key": "AWS credentials come from the boto3 chain (AWS_PROFILE, environment, instance role)",
    "secret_key": "AWS credentials come from the boto3 chain (AWS_PROFILE, environment, instance role)",
    "session_token": "AWS credentials come from the boto3 chain (AWS_PROFILE, environment, instance role)",
    "aws_access_key_id": "AWS credentials come from the boto3 chain (AWS_PROFILE, environment, instance role)",
    "aws_secret_access_key": "AWS credentials come from the boto3 chain (AWS_PROFILE, environment, instance role)",
    "aws_session_token": "AWS credentials come from the boto3 chain (AWS_PROFILE, environment, instance role)",
}

# Bounds on what a config file may be: it is a few dozen lines, and YAML can be made to explode.
MAX_CONFIG_BYTES = 1 << 20
MAX_DEPTH = 32
MAX_NODES = 100_000  # after aliases are expanded: a "billion laughs" file is refused before it is built

Lines = dict[tuple[str, ...], int]  # a key path's 1-based line in the file


def read_yaml(path: Path) -> tuple[dict[str, Any], Lines]:
    """The file's top-level mapping and the line of every key path; ConfigError for what no config file can be."""
    name = path.name
    text = read_text(path)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{name}:{mark.line + 1}" if mark is not None else name
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{where}: invalid YAML: {problem}"]) from None
    except RecursionError:
        raise ConfigError([f"{name}: nested too deeply to be a config file"]) from None
    if node is not None:
        problems = shape_problems(node, name)
        if problems:
            raise ConfigError(problems)
    try:
        data = yaml.safe_load(text)  # bounded now: no duplicate keys, shallow, no exploding aliases
    except yaml.YAMLError as exc:  # composes, but does not construct (a tag such as !0)
        mark = getattr(exc, "problem_mark", None)
        where = f"{name}:{mark.line + 1}" if mark is not None else name
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError([f"{where}: invalid YAML: {problem}"]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([f"{name}:1: expected a mapping of sections (opensearch, sagemaker, ...) at the top"])
    return data, line_index(node)


def read_text(path: Path) -> str:
    """The file's text: a regular file of at most MAX_CONFIG_BYTES in UTF-8 (never /dev/zero read forever)."""
    import stat

    try:
        info = path.stat()
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found"], fix="pass --config with the path of your config file") from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from None
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError([f"{path}: not a regular file"], fix="pass --config with the path of your config file")
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError([f"{path}: larger than {MAX_CONFIG_BYTES // 1024} KiB; a config file is a few dozen lines"])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError([f"{path.name}:{line}: not UTF-8 (byte {raw[exc.start]:#04x})"]) from None


def shape_problems(root: yaml.Node, name: str) -> list[str]:
    """Duplicate keys (naming both lines), nesting deeper than MAX_DEPTH, more than MAX_NODES once aliases expand."""
    problems: list[str] = []
    sizes: dict[int, int] = {}

    def size(node: yaml.Node) -> int:  # expanded node count, memoised per node (aliases share nodes)
        key = id(node)
        if key not in sizes:
            sizes[key] = 0  # a recursive alias counts once
            children: list[yaml.Node] = []
            if isinstance(node, yaml.MappingNode):
                children = [n for pair in node.value for n in pair]
            elif isinstance(node, yaml.SequenceNode):
                children = list(node.value)
            sizes[key] = min(1 + sum(size(c) for c in children), MAX_NODES + 1)
        return sizes[key]

    def walk(node: yaml.Node, path: str, depth: int, seen: set[int]) -> None:
        if depth > MAX_DEPTH:
            problems.append(f"{name}:{node.start_mark.line + 1}: {path or '(top level)'}: nested deeper than "
                            f"{MAX_DEPTH} levels")
            return
        if id(node) in seen:
            return  # an alias walked already: its keys were checked there
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for key, value in node.value:
                label = str(key.value) if isinstance(key, yaml.ScalarNode) else "(complex key)"
                line = key.start_mark.line + 1
                if label in first:
                    dotted = f"{path}.{label}" if path else label
                    problems.append(f"{name}:{line}: {dotted}: duplicate key (first at line {first[label]}); "
                                    "YAML would silently keep only the last one")
                else:
                    first[label] = line
                walk(value, f"{path}.{label}" if path else label, depth + 1, seen)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, f"{path}.{i}", depth + 1, seen)

    try:
        walk(root, "", 0, set())
        if not problems and size(root) > MAX_NODES:
            problems.append(f"{name}: expands to more than {MAX_NODES} values once its aliases are followed "
                            "(an alias bomb?); a config file needs a few dozen")
    except RecursionError:
        problems.append(f"{name}: nested too deeply to be a config file")
    return problems


def apply_env(data: dict[str, Any], env: dict[str, str]
               ) -> tuple[dict[str, Any], SecretStr | None, dict[tuple[str, ...], str]]:
    """The YAML data with environment overrides applied (env wins), the password if one is set, and which config
    paths came from which variable (so an error in one names the variable, not a line of the file)."""
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    from_env: dict[tuple[str, ...], str] = {}
    opensearch = data.setdefault("opensearch", {})
    if not isinstance(opensearch, dict):
        return data, None, from_env  # the model reports the wrong type with its path
    if env.get("OPENSEARCH_URL"):
        opensearch["url"] = env["OPENSEARCH_URL"]
        from_env[("opensearch", "url")] = "OPENSEARCH_URL"
    if env.get("OPENSEARCH_CA_CERTS"):
        opensearch["ca_certs"] = env["OPENSEARCH_CA_CERTS"]
        from_env[("opensearch", "ca_certs")] = "OPENSEARCH_CA_CERTS"
    auth = opensearch.get("auth")
    auth = dict(auth) if isinstance(auth, dict) else ({} if auth is None else auth)
    if env.get("OPENSEARCH_USERNAME") and isinstance(auth, dict):
        auth["type"] = "basic"
        auth["username"] = env["OPENSEARCH_USERNAME"]
        from_env[("opensearch", "auth", "username")] = "OPENSEARCH_USERNAME"
    if env.get("AWS_REGION") and isinstance(auth, dict) and auth.get("type") == "aws_sigv4":
        auth["region"] = env["AWS_REGION"]
        from_env[("opensearch", "auth", "region")] = "AWS_REGION"
    if auth:
        opensearch["auth"] = auth
    sagemaker = data.get("sagemaker")
    if env.get("AWS_REGION"):
        if sagemaker is None:
            sagemaker = data["sagemaker"] = {}
        if isinstance(sagemaker, dict):
            sagemaker["region"] = env["AWS_REGION"]
            from_env[("sagemaker", "region")] = "AWS_REGION"
    if env.get("AWS_PROFILE"):
        aws = data.setdefault("aws", {})
        if isinstance(aws, dict):
            aws["profile"] = env["AWS_PROFILE"]
            from_env[("aws", "profile")] = "AWS_PROFILE"
    password = SecretStr(env["OPENSEARCH_PASSWORD"]) if env.get("OPENSEARCH_PASSWORD") else None
    return data, password, from_env


def line_index(node: yaml.Node | None) -> dict[tuple[str, ...], int]:
    """1-based line of every mapping key path in the YAML document."""
    out: dict[tuple[str, ...], int] = {}

    def walk(n: yaml.Node, path: tuple[str, ...]) -> None:
        if isinstance(n, yaml.MappingNode):
            for key, value in n.value:
                sub = (*path, str(key.value))
                out[sub] = key.start_mark.line + 1
                walk(value, sub)
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                out[(*path, str(i))] = item.start_mark.line + 1
                walk(item, (*path, str(i)))

    if node is not None:
        walk(node, ())
    return out


def secret_problems(data: Any, name: str, lines: dict[tuple[str, ...], int], path: tuple[str, ...] = ()) -> list[str]:
    problems: list[str] = []
    if isinstance(data, dict):
        for key, value in data.items():
            sub = (*path, str(key))
            if str(key).lower() in _SECRET_KEYS:
                where = f"{name}:{lines[sub]}" if sub in lines else name
                problems.append(
                    f"{where}: {'.'.join(sub)}: secrets are never read from the config file; "
                    f"{_SECRET_KEYS[str(key).lower()]}"
                )
            else:
                problems.extend(secret_problems(value, name, lines, sub))
    return problems


def format_error(err: Any, name: str, lines: dict[tuple[str, ...], int],
                  from_env: dict[tuple[str, ...], str] | None = None) -> str:
    """One line for one pydantic error: `file[:line]: dotted.path: message`, or `VARIABLE (environment): ...`."""
    loc = [str(p) for p in err["loc"] if not (isinstance(p, str) and p in {"none", "basic", "aws_sigv4"})]
    kind = err["type"]
    # A tagged union reports the tag in the location; it is noise for a reader.
    path = tuple(loc)
    line = None
    for cut in range(len(path), 0, -1):
        if path[:cut] in lines:
            line = lines[path[:cut]]
            break
    variable = next((v for p, v in (from_env or {}).items() if path[: len(p)] == p), None)
    if variable is not None:
        where = f"{variable} (environment)"
    else:
        where = f"{name}:{line}" if line is not None and kind != "missing" else name
    dotted = ".".join(loc) or "(top level)"
    ctx = err.get("ctx") or {}
    if kind == "missing":
        message = "field required"
    elif kind == "extra_forbidden":
        message = "unknown field"
    elif kind == "literal_error":
        message = f"must be one of {ctx.get('expected', '')}"
    elif kind == "union_tag_invalid":
        message = f"type must be one of {ctx.get('expected_tags', '')}"
    elif kind == "union_tag_not_found":
        message = "needs a 'type' (none, basic or aws_sigv4)"
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        message = f"expected a mapping of fields, got {type(err.get('input')).__name__}"
    elif kind == "string_pattern_mismatch":
        message = f"invalid value {err.get('input')!r}"
    elif kind == "finite_number":
        message = "must be a finite number"
    elif kind == "path_type":
        message = f"expected a file path, got {type(err.get('input')).__name__}"
    elif kind in {"value_error", "assertion_error"}:
        message = str(ctx.get("error", err["msg"]))
    else:
        message = err["msg"][0].lower() + err["msg"][1:]
    return f"{where}: {dotted}: {message}"
