"""Which Maven repository artifacts come from, read the way `mvn` reads it: `--repository` /
OS_RERANK_MAVEN_REPOSITORY, else the mirror of `central` that Maven's settings.xml names, else Maven Central; and
the local Maven repository (~/.m2/repository, or settings.xml's localRepository) to look in first. maven.py fetches
and checks the artifacts from what this chooses.
"""

from __future__ import annotations

import os
import re
import shutil
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import LocalNodeError

MAVEN_CENTRAL = "https://repo1.maven.org/maven2"
REPOSITORY_ENV = "OS_RERANK_MAVEN_REPOSITORY"


@dataclass(frozen=True)
class Repository:
    """Where artifacts come from: `url` (https://, http:// or file://) and what chose it, for messages."""

    url: str
    source: str
    local: Path | None = None  # the local Maven repository, consulted first

    @property
    def shown(self) -> str:
        """The URL without a password (a mirror URL may carry user:password@)."""
        return redact_url(self.url)



def redact_url(url: str) -> str:
    """`url` with any password in its user-info replaced by ***."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))



def settings_files(environ: Mapping[str, str], home: Path) -> list[Path]:
    """Maven's settings.xml files in the order Maven reads them: the user's, then the installation's."""
    files = [home / ".m2" / "settings.xml"]
    for var in ("MAVEN_HOME", "M2_HOME"):
        if environ.get(var):
            files.append(Path(environ[var]) / "conf" / "settings.xml")
    mvn = shutil.which("mvn", path=environ.get("PATH"))
    if mvn:
        files.append(Path(os.path.realpath(mvn)).parent.parent / "conf" / "settings.xml")
    files += [Path("/usr/share/maven/conf/settings.xml"), Path("/etc/maven/settings.xml")]
    seen: set[Path] = set()
    out = []
    for f in files:
        if f not in seen:
            seen.add(f)
            out.append(f)
    return out


def _strip_ns(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def xml_children(node: ET.Element, name: str) -> list[ET.Element]:
    """The children of `node` named `name`, whatever their XML namespace (settings.xml and POMs use several)."""
    return [c for c in node if _strip_ns(c.tag) == name]


def xml_text(node: ET.Element, name: str) -> str | None:
    """The stripped text of `node`'s first child named `name`, or None when it has none."""
    found = xml_children(node, name)
    return (found[0].text or "").strip() if found else None


def mirror_of_central(settings_xml: str) -> str | None:
    """The URL of the first enabled mirror whose <mirrorOf> covers `central`, or None."""
    try:
        root = ET.fromstring(settings_xml)
    except ET.ParseError:
        return None
    for mirrors in xml_children(root, "mirrors"):
        for mirror in xml_children(mirrors, "mirror"):
            if (xml_text(mirror, "blocked") or "").lower() == "true":
                continue
            patterns = [p.strip() for p in (xml_text(mirror, "mirrorOf") or "").split(",") if p.strip()]
            if _covers_central(patterns) and xml_text(mirror, "url"):
                return xml_text(mirror, "url")
    return None


def _covers_central(patterns: list[str]) -> bool:
    """Maven's <mirrorOf> matching for the repository id `central` (an https repository, not localhost)."""
    if "!central" in patterns:
        return False
    return any(p in ("*", "central", "external:*", "external:https:*") for p in patterns)


def local_repository(settings_xml: str) -> Path | None:
    try:
        root = ET.fromstring(settings_xml)
    except ET.ParseError:
        return None
    value = xml_text(root, "localRepository")
    return Path(value.replace("${user.home}", "~")).expanduser() if value else None


def choose_repository(explicit: str | None, environ: Mapping[str, str], home: Path | None = None,
                      settings: list[Path] | None = None) -> Repository:
    """The repository to download from, and the local Maven repository to look in first.

    `settings` are the settings.xml files to read (default: where Maven looks, `settings_files`).
    """
    home = home or Path(environ.get("HOME") or Path.home())
    local: Path | None = None
    mirror: tuple[str, Path] | None = None
    for path in settings_files(environ, home) if settings is None else settings:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        local = local or local_repository(text)
        if mirror is None:
            url = mirror_of_central(text)
            if url:
                mirror = (url, path)
    local = local or home / ".m2" / "repository"
    if explicit:
        return Repository(_checked_url(explicit, "--repository"), "--repository", local)
    if environ.get(REPOSITORY_ENV):
        return Repository(_checked_url(environ[REPOSITORY_ENV], REPOSITORY_ENV), REPOSITORY_ENV, local)
    if mirror is not None:
        return Repository(_checked_url(mirror[0], str(mirror[1])), f"Maven mirror in {mirror[1]}", local)
    return Repository(MAVEN_CENTRAL, "Maven Central", local)


def _checked_url(url: str, where: str) -> str:
    url = url.strip().rstrip("/")
    if re.match(r"^(https?|file)://", url):
        return url
    if url.startswith("/"):
        return Path(url).as_uri()
    raise LocalNodeError(f"{where}: not a repository URL: {redact_url(url)!r}",
                         fix="give an https:// URL (a Maven repository or mirror) or a folder path")
