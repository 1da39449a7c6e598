"""A tiny Maven repository holding a fake OpenSearch for `os-rerank local`'s fast tests.

The real artifacts weigh ~430 MB and need a JVM; these are a few kilobytes and need Python only:
- the distribution zip has `bin/opensearch` (started as `-d -p PIDFILE`, it launches `fake_node.py` in the
  background, whose command line carries `-Dopensearch.path.home=<dist>` as the real JVM's does), and
  `bin/opensearch-plugin` (unzips a plugin into plugins/<name>);
- `fake_node.py` answers `GET /_cluster/health` on the configured port, logs like a node, and behaves as the file
  `FAKE_BEHAVIOUR` in the distribution says: `healthy` (default), `die` (logs an error and exits) or `hang` (never
  becomes healthy);
- plugin zips carry real-shaped descriptors (neural-search extends k-NN, k-NN extends lang-painless, ML Commons
  extends job-scheduler); the modules (lang-painless, reindex) are jars with POMs, dependencies that exclude their
  own, a transitive one, and one the distribution's lib/ already holds.
The real layer (tests/backends.py) builds the real thing.
"""

from __future__ import annotations

import hashlib
import io
import sys
import zipfile
from pathlib import Path

VERSION = "2.18.0"  # a version os-rerank pins no SHA-1 for (the fakes are not the real files)

FAKE_NODE = '''\
import json, os, sys, time
from http.server import BaseHTTPRequestHandler, HTTPServer
home_arg, port, pid_file, log_file, behaviour = sys.argv[1:6]
with open(pid_file, "w") as f:
    f.write(str(os.getpid()))
log = open(log_file, "a")
log.write("[INFO ][o.o.n.Node] starting\\n"); log.flush()
if behaviour == "die":
    time.sleep(0.5)
    log.write("[ERROR][o.o.b.OpenSearch] fatal exception while booting: java.lang.IllegalStateException: boom\\n")
    log.close(); os.remove(pid_file); sys.exit(1)

class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        if behaviour == "hang":
            self.send_response(503); self.end_headers(); return
        body = json.dumps({"cluster_name": "fake", "status": "green"}).encode()
        self.send_response(200); self.send_header("content-length", str(len(body))); self.end_headers()
        self.wfile.write(body)

log.write("[INFO ][o.o.n.Node] started\\n"); log.flush()
HTTPServer(("127.0.0.1", int(port)), H).serve_forever()
'''

LAUNCHER = '''#!/usr/bin/env bash
home="$(cd "$(dirname "$0")/.." && pwd)"
pid_file=""
while [ $# -gt 0 ]; do case "$1" in -p) pid_file="$2"; shift 2;; *) shift;; esac; done
yml="$home/config/opensearch.yml"
port=$(sed -n 's/^http.port: //p' "$yml")
logs=$(sed -n 's/^path.logs: //p' "$yml")
name=$(sed -n 's/^node.name: //p' "$yml")
behaviour=$(cat "$home/FAKE_BEHAVIOUR" 2>/dev/null || echo healthy)
nohup {python} "$home/fake_node.py" "-Dopensearch.path.home=$home" "$port" "$pid_file" \\
  "$logs/os-rerank-$name.log" "$behaviour" >/dev/null 2>&1 &
exit 0
'''

PLUGIN_TOOL = '''#!{python}
import sys, zipfile
from pathlib import Path
home = Path(__file__).resolve().parent.parent
url = sys.argv[-1]
path = url[len("file://"):]
with zipfile.ZipFile(path) as z:
    props = dict(line.split("=", 1) for line in z.read("plugin-descriptor.properties").decode().splitlines()
                 if "=" in line)
    z.extractall(home / "plugins" / props["name"])
print("-> Installed " + props["name"])
'''

PLUGINS = {  # artifact id -> (plugin name, extended plugins)
    "opensearch-job-scheduler": ("opensearch-job-scheduler", ""),
    "opensearch-ml-plugin": ("opensearch-ml", "opensearch-job-scheduler"),
    "opensearch-knn": ("opensearch-knn", "lang-painless"),
    "neural-search": ("opensearch-neural-search", "opensearch-knn"),
}


def _zip(members: dict[str, str | bytes], executable: tuple[str, ...] = ()) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o755 if name in executable else 0o644) << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def _put(repo: Path, group: str, artifact: str, version: str, ext: str, data: bytes, *, sha1: bool) -> Path:
    path = repo / group.replace(".", "/") / artifact / version / f"{artifact}-{version}.{ext}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if sha1:
        path.with_name(path.name + ".sha1").write_text(hashlib.sha1(data).hexdigest() + "\n")
    return path


def _module(repo: Path, group: str, artifact: str, version: str, entry: str,
            deps: list[tuple[str, str, str, bool]], *, sha1: bool) -> None:
    """A jar holding `entry` and its POM; each dependency (group, artifact, version, excludes all of its own)."""
    _put(repo, group, artifact, version, "jar", _zip({entry: b"\xca\xfe\xba\xbe"}), sha1=sha1)
    lines = []
    for g, a, v, closed in deps:
        exclusions = ("<exclusions><exclusion><groupId>*</groupId><artifactId>*</artifactId></exclusion>"
                      "</exclusions>") if closed else ""
        lines.append(f"<dependency><groupId>{g}</groupId><artifactId>{a}</artifactId><version>{v}</version>"
                     f"<scope>compile</scope>{exclusions}</dependency>")
    lines.append("<dependency><groupId>junit</groupId><artifactId>junit</artifactId><version>4.13.2</version>"
                 "<scope>test</scope></dependency>")
    pom = f"<project><dependencies>{''.join(lines)}</dependencies></project>"
    _put(repo, group, artifact, version, "pom", pom.encode(), sha1=sha1)


def make_repository(repo: Path, version: str = VERSION, *, sha1: bool = True) -> Path:
    """A file:// Maven repository with everything a fake node of `version` is made of; returns `repo`."""
    python = sys.executable
    top = f"opensearch-{version}"
    dist = _zip({
        f"{top}/bin/opensearch": LAUNCHER.replace("{python}", python),
        f"{top}/bin/opensearch-plugin": PLUGIN_TOOL.replace("{python}", python),
        f"{top}/fake_node.py": FAKE_NODE,
        f"{top}/config/opensearch.yml": "# fake\n",
        f"{top}/config/jvm.options.d/.keep": "",
        f"{top}/modules/transport-netty4/plugin-descriptor.properties": "name=transport-netty4\njava.version=11\n",
        f"{top}/lib/opensearch-{version}.jar": b"x",
        f"{top}/lib/opensearch-core-{version}.jar": b"x",
        f"{top}/plugins/.keep": "",
        f"{top}/logs/.keep": "",
    }, executable=(f"{top}/bin/opensearch", f"{top}/bin/opensearch-plugin"))
    _put(repo, "org.opensearch.distribution.integ-test-zip", "opensearch", version, "zip", dist, sha1=sha1)
    _module(repo, "org.opensearch.plugin", "lang-painless", version, "org/opensearch/painless/PainlessPlugin.class",
            [("org.antlr", "antlr4-runtime", "0.0.1", True), ("org.opensearch.plugin",
              "opensearch-scripting-painless-spi", version, False), ("org.opensearch", "opensearch", version, False)],
            sha1=sha1)
    _module(repo, "org.opensearch.plugin", "reindex-client", version,
            "org/opensearch/index/reindex/ReindexPlugin.class", [("org.example", "http-lib", "1.0", False)], sha1=sha1)
    _module(repo, "org.antlr", "antlr4-runtime", "0.0.1", "a.class", [], sha1=sha1)  # a version nothing pins
    _module(repo, "org.opensearch.plugin", "opensearch-scripting-painless-spi", version, "s.class", [], sha1=sha1)
    # http-lib brings codec transitively, and the core library the distribution's lib/ already holds (left out).
    _module(repo, "org.example", "http-lib", "1.0", "h.class",
            [("org.example", "codec", "2.0", False), ("org.opensearch", "opensearch-core", version, False)], sha1=sha1)
    _module(repo, "org.example", "codec", "2.0", "c.class", [], sha1=sha1)
    for artifact, (name, extended) in PLUGINS.items():
        descriptor = f"name={name}\nversion={version}.0\nextended.plugins={extended}\n"
        _put(repo, "org.opensearch.plugin", artifact, f"{version}.0", "zip",
             _zip({"plugin-descriptor.properties": descriptor, f"{name}.jar": b"x"}), sha1=sha1)
    return repo


def make_jdk(root: Path, feature: int) -> Path:
    """A fake JDK home whose `bin/java -version` reports `feature` (what os-rerank reads of a JDK)."""
    java = root / f"jdk-{feature}" / "bin" / "java"
    java.parent.mkdir(parents=True, exist_ok=True)
    java.write_text(f'#!/bin/sh\necho \'openjdk version "{feature}.0.2" 2024-01-16\' >&2\n')
    java.chmod(0o755)
    return java.parent.parent
