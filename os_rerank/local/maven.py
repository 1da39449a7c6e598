"""Maven artifacts over plain HTTPS (or a folder): how they are fetched and checked, where they are kept.

No Maven needed, only the repository layout (`group/as/path/artifact/version/artifact-version.ext`). The
repository is chosen by maven_repository.py: `--repository` / OS_RERANK_MAVEN_REPOSITORY, else the mirror of
`central` that Maven's own settings.xml names (so a machine behind a corporate mirror resolves the way `mvn` does),
else Maven Central. A hit in the local Maven repository (~/.m2/repository, or settings.xml's localRepository) is
used before any download.

Every artifact is checked before it is used: against the `.sha1` the repository publishes beside it, else against
the SHA-1 os-rerank pins for the artifacts it was tested with (`PINNED_SHA1`), else its SHA-1 is recorded on first
download (said in a warning) and checked on every later use. A download goes to `<file>.part` and is renamed only
once checked, so an interrupted one leaves nothing that looks complete.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import LocalNodeError
from ..events import note
from .layout import Progress, locked, quiet
from .maven_repository import Repository, xml_children, xml_text

CHUNK = 1 << 20
TIMEOUT_SECONDS = 60.0

# SHA-1 of artifacts os-rerank was tested with, for repositories that do not publish a .sha1 beside them (the
# mirror this project was built behind served none for most plugin zips). Computed from the downloaded files on
# 2026-11-29; where Maven Central's .sha1 was served it matched.
PINNED_SHA1: dict[str, str] = {
    "org.opensearch.distribution.integ-test-zip:opensearch:2.19.1:zip": "af4fbc753ec975e4f335e3cf514527c7fb216864",
    "org.opensearch.plugin:opensearch-job-scheduler:2.19.1.0:zip": "70086187558b6c62bb5419cce9ad997de7e8f951",
    "org.opensearch.plugin:opensearch-ml-plugin:2.19.1.0:zip": "264bb901831f3ffc22af9f95161fe40fd50fab57",
    "org.opensearch.plugin:opensearch-knn:2.19.1.0:zip": "7ded4cf706be052f7bfcccea7102770a9298b96e",
    "org.opensearch.plugin:neural-search:2.19.1.0:zip": "af25af4caf1d2a7563e187df1b97dc4559c6176e",
    "org.opensearch.plugin:opensearch-security:2.19.1.0:zip": "bbea3f51ff7e94da093589f2c30ad9868e92959b",
    "org.opensearch.plugin:lang-painless:2.19.1:jar": "645bd9d27379a90d051dec24eb7232244f2cd8f2",
    "org.opensearch.plugin:opensearch-scripting-painless-spi:2.19.1:jar": "71223aae74a978698dd2218f95917a82e111c9b5",
    "org.antlr:antlr4-runtime:4.13.1:jar": "17125bae1d965624e265ef49552f6465a2bfa307",
    "org.ow2.asm:asm:9.7:jar": "073d7b3086e14beb604ced229c302feff6449723",
    "org.ow2.asm:asm-analysis:9.7:jar": "e4a258b7eb96107106c0599f0061cfc1832fe07a",
    "org.ow2.asm:asm-commons:9.7:jar": "e86dda4696d3c185fcc95d8d311904e7ce38a53f",
    "org.ow2.asm:asm-tree:9.7:jar": "e446a17b175bfb733b87c5c2560ccb4e57d69f1a",
    "org.ow2.asm:asm-util:9.7:jar": "c0655519f24d92af2202cb681cd7c1569df6ead6",
    "org.opensearch.plugin:reindex-client:2.19.1:jar": "982e19a26e17ee201a172fb57e8d208789aa815f",
    "org.opensearch.client:opensearch-rest-client:2.19.1:jar": "3058ae027307dc39c599ca2368f88d89a1984a2c",
    "org.opensearch:opensearch-ssl-config:2.19.1:jar": "8e50964a73c00d793d99cf2749d93082bb25e440",
    "org.apache.httpcomponents:httpclient:4.5.14:jar": "1194890e6f56ec29177673f2f12d0b8e627dec98",
    "org.apache.httpcomponents:httpcore:4.4.16:jar": "51cf043c87253c9f58b539c9f7e44c8894223850",
    "org.apache.httpcomponents:httpasyncclient:4.1.5:jar": "cd18227f1eb8e9a263286c1d7362ceb24f6f9b32",
    "org.apache.httpcomponents:httpcore-nio:4.4.16:jar": "cd21c80a9956be48c4c1cfd2f594ba02857d0927",
    "commons-codec:commons-codec:1.16.1:jar": "47bd4d333fba53406f6c6c51884ddbca435c8862",
    "commons-logging:commons-logging:1.2:jar": "4bfc12adfe4842bf07b657f0369c4cb522955686",
}


@dataclass(frozen=True)
class Artifact:
    """One Maven artifact: `group:artifact:version:extension`."""

    group: str
    artifact: str
    version: str
    extension: str = "jar"

    @property
    def coordinates(self) -> str:
        return f"{self.group}:{self.artifact}:{self.version}:{self.extension}"

    @property
    def file_name(self) -> str:
        return f"{self.artifact}-{self.version}.{self.extension}"

    @property
    def path(self) -> str:
        """The artifact's path inside any Maven repository."""
        return f"{self.group.replace('.', '/')}/{self.artifact}/{self.version}/{self.file_name}"

    def sibling(self, extension: str) -> Artifact:
        """The same artifact with another extension (its .pom, say)."""
        return Artifact(self.group, self.artifact, self.version, extension)


# --- choosing the repository ---------------------------------------------------------------------------------------
# --- fetching -------------------------------------------------------------------------------------------------------

class NotServedError(LocalNodeError):
    """The repository does not have the artifact (404), as opposed to failing to answer."""


class _KeepAuthOnSameOrigin(urllib.request.HTTPRedirectHandler):
    """Follow redirects, but never carry a mirror's credentials to another host or from https to http."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None:
            old, moved = urllib.parse.urlsplit(req.full_url), urllib.parse.urlsplit(newurl)
            if (old.scheme, old.netloc) != (moved.scheme, moved.netloc):
                new.remove_header("Authorization")
        return new


_OPENER = urllib.request.build_opener(_KeepAuthOnSameOrigin)


def _open(url: str, *, method: str = "GET") -> Any:
    parts = urllib.parse.urlsplit(url)
    headers = {"User-Agent": "os-rerank"}
    if parts.username:
        import base64

        token = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(token.encode()).decode()
        host = parts.hostname or ""
        url = urllib.parse.urlunsplit(parts._replace(netloc=f"{host}:{parts.port}" if parts.port else host))
    request = urllib.request.Request(url, headers=headers, method=method)
    return _OPENER.open(request, timeout=TIMEOUT_SECONDS)


def _url_error(artifact: Artifact, repo: Repository, exc: Exception) -> LocalNodeError:
    if isinstance(exc, urllib.error.HTTPError) and exc.code == 404:
        return NotServedError(f"{artifact.coordinates} is not served by {repo.shown} (404)",
                              fix="pick a version that repository serves, or point --repository at one that has it")
    if isinstance(exc, urllib.error.HTTPError) and exc.code in (401, 403):
        return LocalNodeError(f"{repo.shown} refused {artifact.coordinates} ({exc.code}): it needs credentials",
                              fix="put them in the repository URL (https://user:password@host/...); os-rerank does "
                              "not read settings.xml <servers>")
    if isinstance(exc, FileNotFoundError) or isinstance(getattr(exc, "reason", None), FileNotFoundError):
        return NotServedError(f"{artifact.coordinates} is not in {repo.shown}",
                              fix="pick a version that repository holds, or point --repository at one that has it")
    reason = getattr(exc, "reason", None) or exc
    return LocalNodeError(f"cannot reach {repo.shown} for {artifact.coordinates}: {reason}",
                          fix="check the network (HTTPS_PROXY is honoured), or set --repository to a reachable mirror")


def is_served(artifact: Artifact, repo: Repository) -> bool:
    """Whether the repository has the artifact (HEAD, or a file check); LocalNodeError when it cannot be asked."""
    if repo.local is not None and (repo.local / artifact.path).is_file():
        return True
    url = f"{repo.url}/{artifact.path}"
    if url.startswith("file://"):
        return Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path)).is_file()
    try:
        with _open(url, method="HEAD"):
            return True
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return False
        raise _url_error(artifact, repo, exc) from None
    except (urllib.error.URLError, OSError) as exc:
        raise _url_error(artifact, repo, exc) from None


def published_sha1(artifact: Artifact, repo: Repository) -> str | None:
    """The `.sha1` the repository publishes beside the artifact, or None when it has none."""
    try:
        with _open(f"{repo.url}/{artifact.path}.sha1") as reply:
            text = reply.read(200).decode("ascii", "replace")
    except (urllib.error.URLError, OSError, ValueError):
        return None
    match = re.match(r"\s*([0-9a-fA-F]{40})\b", text)
    return match.group(1).lower() if match else None


def sha1_of(path: Path) -> str:
    digest = hashlib.sha1(usedforsecurity=False)
    with path.open("rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Fetched:
    """An artifact in the cache: its file, its SHA-1, and how that SHA-1 was vouched for."""

    artifact: Artifact
    path: Path
    sha1: str
    checked_by: str  # "published .sha1", "pinned", "recorded on first download", "cache"
    downloaded_bytes: int = 0
    seconds: float = 0.0


class Cache:
    """Artifacts kept under `root`, in repository layout, each with `<file>.sha1` once checked."""

    def __init__(self, root: Path, repo: Repository, progress: Progress | None = None) -> None:
        self.root = root
        self.repo = repo
        self.progress = progress or quiet

    def fetch(self, artifact: Artifact) -> Fetched:
        """The artifact's checked file in the cache, downloaded (or copied from ~/.m2) when missing."""
        target = self.root / artifact.path
        with locked(target.with_name(target.name + ".lock")):
            return self._fetch(artifact, target)

    def _fetch(self, artifact: Artifact, target: Path) -> Fetched:
        recorded = target.with_name(target.name + ".sha1")
        if target.is_file() and recorded.is_file():
            want = (recorded.read_text(encoding="ascii", errors="replace").split() or [""])[0]
            got = sha1_of(target)
            if got == want:
                return Fetched(artifact, target, got, "cache")
            self.progress(note(f"{artifact.file_name}: cached copy is damaged (SHA-1 {got}, recorded {want}); "
                          "downloading it again"))
            target.unlink()
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(target.name + ".part")
        started = time.monotonic()
        try:
            size = self._copy_in(artifact, part)
            got = sha1_of(part)
            checked_by = self._check(artifact, got)
            os.replace(part, target)
        finally:
            part.unlink(missing_ok=True)
        recorded.write_text(got + "\n", encoding="ascii")
        return Fetched(artifact, target, got, checked_by, size, time.monotonic() - started)

    def _copy_in(self, artifact: Artifact, part: Path) -> int:
        local = self.repo.local / artifact.path if self.repo.local is not None else None
        if local is not None and local.is_file():
            self.progress(note(f"{artifact.file_name}: from the local Maven repository {self.repo.local}"))
            shutil.copyfile(local, part)
            return 0
        url = f"{self.repo.url}/{artifact.path}"
        try:
            reply = _open(url)
        except (urllib.error.URLError, OSError) as exc:
            raise _url_error(artifact, self.repo, exc) from None
        with reply:
            total = int(reply.headers.get("Content-Length") or 0)
            self.progress(note(f"{artifact.file_name}: downloading{f' {_mb(total)}' if total else ''} from "
                          f"{self.repo.shown}"))
            done, last = 0, time.monotonic()
            with part.open("wb") as out:
                while True:
                    try:
                        block = reply.read(CHUNK)
                    except OSError as exc:
                        raise _url_error(artifact, self.repo, exc) from None
                    if not block:
                        break
                    try:
                        out.write(block)
                    except OSError as exc:
                        raise LocalNodeError(f"cannot write {part}: {exc.strerror}",
                                             fix="free disk space, or set OS_RERANK_CACHE to another folder") from None
                    done += len(block)
                    if total and time.monotonic() - last >= 2.0:
                        last = time.monotonic()
                        self.progress(note(f"{artifact.file_name}: {_mb(done)} of {_mb(total)} "
                                           f"({100 * done // total}%)"))
        if total and done != total:
            raise LocalNodeError(f"{artifact.file_name}: download ended at {done} of {total} bytes",
                                 fix="run the command again")
        return done

    def _check(self, artifact: Artifact, got: str) -> str:
        """How the SHA-1 was vouched for; LocalNodeError when it does not match.

        A pinned SHA-1 is checked first and always: a `.sha1` from the same server as the file vouches only
        against a broken download, not against a mirror that serves another file.
        """
        pinned = PINNED_SHA1.get(artifact.coordinates)
        published = published_sha1(artifact, self.repo)
        vouched = [(want, how) for want, how in ((pinned, "pinned"), (published, "published .sha1")) if want]
        for want, how in vouched:
            if want != got:
                raise LocalNodeError(
                    f"{artifact.file_name}: SHA-1 {got} does not match the {how} {want}; the download is corrupt "
                    "or the repository serves a different file",
                    fix="run the command again; if it persists, check the repository (--repository)")
        if vouched:
            return " and ".join(how for _, how in vouched)
        self.progress(note(f"{artifact.file_name}: warning: {self.repo.shown} publishes no checksum for it and "
                           f"os-rerank pins none; recorded its SHA-1 {got} and will check it on every later use"))
        return "recorded on first download"


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


# --- a POM's runtime dependencies ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dependency:
    """A POM dependency; `transitive` is False when it excludes all of its own dependencies (`*:*`)."""

    artifact: Artifact
    transitive: bool = True


def pom_dependencies(pom_xml: str) -> list[Dependency]:
    """The compile/runtime dependencies a POM lists with explicit versions (not test, provided or optional)."""
    root = ET.fromstring(pom_xml)
    out = []
    for deps in xml_children(root, "dependencies"):
        for dep in xml_children(deps, "dependency"):
            scope = xml_text(dep, "scope") or "compile"
            if scope not in ("compile", "runtime") or (xml_text(dep, "optional") or "") == "true":
                continue
            group, name, version = xml_text(dep, "groupId"), xml_text(dep, "artifactId"), xml_text(dep, "version")
            if not (group and name and version) or "${" in version:
                continue
            wildcard = any(xml_text(e, "groupId") == "*" and xml_text(e, "artifactId") == "*"
                           for exclusions in xml_children(dep, "exclusions")
                           for e in xml_children(exclusions, "exclusion"))
            out.append(Dependency(Artifact(group, name, version, xml_text(dep, "type") or "jar"), not wildcard))
    return out
