"""A linter for the Painless subset that is also a Java method body (painless/README.md#the-subset).

Every script in painless/ must mean the same thing to Painless (in OpenSearch) and to javac (in our tests), or the
tests prove nothing. One message per violation: `painless/x.painless:12: <rule>: <explanation>`.
Run it as `python -m tests.painless.lint [files...]` (default: every painless/*.painless).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

PAINLESS_DIR = Path(__file__).resolve().parents[2] / "painless"

# Methods our scripts may call, each checked against OpenSearch's Painless allowlist,
# opensearch-project/OpenSearch modules/lang-painless/src/main/resources/org/opensearch/painless/spi/
#   java.lang.txt: Object.equals(Object), Object.toString(); CharSequence.charAt(int), length(), toString();
#     String.contains(CharSequence), indexOf(String), isEmpty(), replace(CharSequence,CharSequence),
#     substring(int,int), valueOf(def); StringBuilder.append(def); Number.doubleValue(), intValue();
#     Double.isNaN(double), Double.isInfinite(double)
#   java.util.txt: Collection.size(), isEmpty(); List.get(int); Map.get(def), containsKey(def)
# Anything else must be looked up there first and then added here. (String.replace(char,char) is NOT allowlisted:
# pass strings. StringBuilder has no (int) constructor: only () and (CharSequence).)
ALLOWED_METHODS = frozenset({
    "append", "charAt", "contains", "containsKey", "doubleValue", "equals", "get", "indexOf", "intValue",
    "isEmpty", "length", "replace", "size", "substring", "toString",
})
ALLOWED_STATIC = frozenset({"Double.isNaN", "Double.isInfinite", "String.valueOf"})
ALLOWED_NEW = frozenset({"StringBuilder", "IllegalArgumentException"})
PRIMITIVES = frozenset({"boolean", "byte", "short", "char", "int", "long", "float", "double"})
KEYWORDS = frozenset({
    "if", "else", "for", "while", "do", "return", "throw", "new", "instanceof", "break", "continue", "try",
    "catch", "null", "true", "false", "this",
})


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    rule: str
    explanation: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.rule}: {self.explanation}"


@dataclass(frozen=True)
class _Literal:
    start: int  # offset of the opening quote
    end: int  # offset after the closing quote
    quote: str


def _scan(src: str) -> tuple[str, list[_Literal], list[tuple[int, int]]]:
    """(code with comments blanked and string contents masked as `_`, string literals, comment spans)."""
    code = list(src)
    literals: list[_Literal] = []
    comments: list[tuple[int, int]] = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith("//", i) or src.startswith("/*", i):
            if src.startswith("//", i):
                end = src.find("\n", i)
                end = n if end < 0 else end
            else:
                end = src.find("*/", i + 2)
                end = n if end < 0 else end + 2
            comments.append((i, end))
            for k in range(i, end):
                if code[k] != "\n":
                    code[k] = " "
            i = end
        elif c in "\"'":
            k = i + 1
            while k < n and src[k] != c and src[k] != "\n":
                k += 2 if src[k] == "\\" else 1
            end = min(k + 1, n)
            literals.append(_Literal(i, end, c))
            for m in range(i + 1, end - 1):
                if code[m] != "\n":
                    code[m] = "_"
            i = end
        else:
            i += 1
    return "".join(code), literals, comments


def _line(src: str, offset: int) -> int:
    return src.count("\n", 0, offset) + 1


def _declared_types(code: str) -> dict[str, str]:
    """Variable name -> declared type, from `Type name =` / `Type name;` / `Type[] name` declarations."""
    types: dict[str, str] = {}
    for m in re.finditer(r"\b([A-Za-z_]\w*)(\s*\[\s*\])?\s+([a-z_]\w*)\s*[=;:)]", code):
        type_name, is_array, name = m.group(1), m.group(2), m.group(3)
        if type_name in KEYWORDS or type_name == "return":
            continue
        types[name] = type_name + ("[]" if is_array else "")
    return types


def _object_operand(text: str, side: str, types: dict[str, str]) -> str | None:
    """Why the operand next to ==/!= is an object (None when it looks primitive or null). See rule no-object-eq."""
    text = text.strip()
    if side == "left":
        if text.endswith('"'):
            return "a string literal"
        if re.search(r"\.get\s*\([^()]*\)$", text):
            return "a .get(...) call"
        m = re.search(r"([A-Za-z_]\w*)$", text)
    else:
        if text.startswith('"'):
            return "a string literal"
        if re.match(r"[A-Za-z_][\w.]*\.get\s*\(", text):
            return "a .get(...) call"
        m = re.match(r"([A-Za-z_]\w*)(?!\s*[.(\[])", text)
    if m is None or m.group(1) == "null":
        return None
    declared = types.get(m.group(1))
    if declared is not None and declared not in PRIMITIVES:
        return f"{m.group(1)} ({declared})"
    return None


def lint_source(src: str, path: str) -> list[Violation]:
    """Every violation of the Painless/Java subset in `src`, in line order."""
    out: list[Violation] = []

    def add(offset: int, rule: str, explanation: str) -> None:
        out.append(Violation(path, _line(src, offset), rule, explanation))

    code, literals, _comments = _scan(src)

    # no-placeholder: ML Commons substitutes `${parameters.X}` into the script *source* before it runs
    # (ConnectorUtils.fillProcessFunctionParameter, 2.12+), comments included; the source then varies with the
    # request and every variant is a new compilation (script.max_compilations_rate).
    for m in re.finditer(r"\$\{parameters\.", src):
        add(m.start(), "no-placeholder", "ML Commons substitutes ${parameters.X} into script source, comments too; "
            "keep scripts static")

    # unicode-escape: javac decodes \uXXXX before parsing, everywhere (comments too); Painless never does.
    for m in re.finditer(r"(\\+)u", src):
        if len(m.group(1)) % 2 == 1:
            add(m.start(), "unicode-escape", "javac rewrites \\u everywhere, even in comments; write \\\\u")

    for lit in literals:
        body = src[lit.start + 1 : lit.end - 1]
        if lit.quote == "'":
            add(lit.start, "single-quote", "'...' is a String in Painless but a char in Java; use double quotes")
            continue
        if lit.end > len(src) or src[lit.end - 1] != '"' or lit.end - lit.start < 2:
            add(lit.start, "string-escape", "unterminated string literal")
            continue
        k = 0
        while k < len(body):
            if body[k] == "\\":
                nxt = body[k + 1 : k + 2]
                if nxt not in ('"', "\\"):
                    add(lit.start + 1 + k, "string-escape",
                        f"only \\\" and \\\\ are escapes in Painless strings, not \\{nxt}; build the text by code")
                k += 2
            else:
                k += 1
        if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in body):
            add(lit.start, "string-escape", "raw control character in a string literal (Java rejects line breaks)")

    for m in re.finditer(r"\bdef\b", code):
        add(m.start(), "no-def", "`def` is Painless only; declare an explicit type (String, List, Map, ...)")
    for m in re.finditer(r"\bvar\s+[A-Za-z_]\w*\s*=", code):
        add(m.start(), "no-var", "`var` is Java only; declare an explicit type")
    for m in re.finditer(r"\bparams\s*(\.\s*(\w+)|\[)", code):
        if m.group(2) != "get":
            add(m.start(), "params-get",
                "read parameters with params.get(\"name\"); params.x / params[...] are Painless only")
    for m in re.finditer(r"\b[A-Z]\w*\s*<\s*[A-Z?][\w\s,.?\[\]<>]*>", code):
        add(m.start(), "no-generics", "Painless has no generics; use raw List / Map and cast")
    for m in re.finditer(r"\b(for|while)\s*\(", code):
        close = _match_paren(code, m.end() - 1)
        rest = code[close:].lstrip()
        if not rest.startswith("{") and not (m.group(1) == "while" and rest.startswith(";")):
            add(m.start(), "loop-braces", "loop bodies need braces (the harness counts iterations at the `{`)")
    for m in re.finditer(r"\bdo\b(?!\s*\{)", code):
        add(m.start(), "loop-braces", "loop bodies need braces (the harness counts iterations at the `{`)")
    for m in re.finditer(r"(?m)^\s*([A-Za-z_][\w\[\]]*)\s+([A-Za-z_]\w*)\s*\([^;{}]*\)\s*\{", code):
        if m.group(1) not in KEYWORDS:
            add(m.start(1), "no-function",
                "function definitions are Painless only; a Java method body cannot hold them")

    # no-object-eq, heuristic: flag ==/!= when an operand is a string literal, a .get(...) call, or a variable
    # declared with a non-primitive type. `x == null` / `x != null` is allowed (identity in both languages).
    types = _declared_types(code)
    for m in re.finditer(r"[=!]=(?!=)", code):
        if m.start() > 0 and code[m.start() - 1] in "=!<>":
            continue
        left = code[max(0, code.rfind("\n", 0, m.start()) + 1) : m.start()]
        left = re.split(r"&&|\|\||[(,!]\s*(?=[^)]*$)", left)[-1]
        right_end = code.find("\n", m.end())
        right = code[m.end() : right_end if right_end >= 0 else len(code)]
        right = re.split(r"&&|\|\||\)\s*[{;]|;", right)[0]
        if right.strip() == "null" or left.strip().endswith("null"):
            continue
        why = _object_operand(left, "left", types) or _object_operand(right, "right", types)
        if why:
            add(m.start(), "no-object-eq",
                f"{m.group(0)} on {why}: Painless compares objects with equals(), Java by identity; use .equals()")

    # allowlist: every method call, static call and constructor must be in Painless's allowlist (see above).
    for m in re.finditer(r"(\b[A-Za-z_]\w*\s*)?\.\s*([A-Za-z_]\w*)\s*\(", code):
        qualifier = (m.group(1) or "").strip()
        name = m.group(2)
        if qualifier[:1].isupper():
            if f"{qualifier}.{name}" not in ALLOWED_STATIC:
                add(m.start(), "allowlist", f"{qualifier}.{name}(...) is not on our checked Painless allowlist")
        elif name not in ALLOWED_METHODS:
            add(m.start(2), "allowlist", f".{name}(...) is not on our checked Painless allowlist")
    for m in re.finditer(r"\bnew\s+([A-Za-z_]\w*)\s*([(\[])", code):
        if m.group(2) == "[":
            continue  # arrays
        if m.group(1) not in ALLOWED_NEW:
            add(m.start(), "allowlist", f"new {m.group(1)}(...) is not on our checked Painless allowlist")
        elif m.group(1) == "StringBuilder" and re.match(r"\s*[^)\s\"]", code[m.end() :]):
            args = code[m.end() : _match_paren(code, m.end() - 1) - 1].strip()
            if not args.startswith('"'):
                add(m.start(), "allowlist",
                    "Painless's StringBuilder has only () and (CharSequence) constructors; no (int) capacity")

    # final-return: the script's last statement returns (Painless needs no return; Java does, and they must agree).
    stripped = code.rstrip()
    last_stmt_start = max(stripped.rfind(";", 0, len(stripped) - 1), stripped.rfind("}", 0, len(stripped) - 1)) + 1
    last = stripped[last_stmt_start:].strip()
    if not re.match(r"return\b", last) or not stripped.endswith(";"):
        add(max(len(stripped) - 1, 0), "final-return", "end the script with an explicit `return ...;`")

    return sorted(out, key=lambda v: v.line)


def _match_paren(code: str, open_at: int) -> int:
    depth = 0
    for i in range(open_at, len(code)):
        if code[i] == "(":
            depth += 1
        elif code[i] == ")":
            depth -= 1
            if depth == 0:
                return i + 1
    return len(code)


def lint_file(path: Path, shown: str | None = None) -> list[Violation]:
    return lint_source(path.read_text(encoding="utf-8"), shown or f"painless/{path.name}")


def main(argv: list[str] | None = None) -> int:
    files = [Path(a) for a in (argv if argv is not None else sys.argv[1:])] or sorted(PAINLESS_DIR.glob("*.painless"))
    problems = [v for f in files for v in lint_file(f)]
    for v in problems:
        print(v)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
