"""Promote and roll back: make the rerank pipeline an index's default search pipeline, and restore the one it replaced.

`index.search.default_pipeline` (a dynamic index setting) names the search pipeline every search of the index runs
through when the request names none, so promoting reranks every existing query with no change to the application.
What a real 2.19.1 node does, and what this module is built on (the README's "Promote and roll back" says more):
- unset, the setting reads as `_none` (with include_defaults); setting it to null removes it; `_none` set explicitly
  stays set and means "no pipeline" too.
- OpenSearch never checks that it names a pipeline that exists: not when it is set, not when that pipeline is
  deleted. Every search of the index that names no pipeline then fails with 400 `Pipeline <name> is not defined`.
  So `teardown` rolls an index back before it deletes the pipeline (`dangling_defaults`).
- `PUT /<index>/_mapping` replaces the mapping's `_meta` as a whole, so the record is merged into what is there.

The record of a promotion lives with the index it concerns, in `_meta.os_rerank_promotion` of its mapping
(`{"pipeline", "previous", "at"}`; previous null: the setting was unset), so `rollback` run from another machine
restores the same value, and it goes when the index goes. Plans are data (`Change`, the exact requests); `apply`
sends exactly those; reads here are GETs only.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..cluster import Cluster
from ..errors import ClusterError, UsageError
from ..events import Event, OnEvent, note
from ..search.query import NO_PIPELINE

DEFAULT_PIPELINE = "index.search.default_pipeline"
RECORD_KEY = "os_rerank_promotion"
PROMOTE = "promote"
ROLLBACK = "rollback"
# Characters OpenSearch refuses in an index name (MetadataCreateIndexService.validateIndexOrAliasName), and the ones
# that would change the request path.
_BAD_INDEX_CHARS = set('\\/*?"<>| ,#:%')


@dataclass(frozen=True)
class Promotion:
    """What promote recorded: the pipeline it made the default, and the default before (None: unset)."""

    pipeline: str
    previous: str | None
    at: str

    def to_dict(self) -> dict[str, Any]:
        return {"pipeline": self.pipeline, "previous": self.previous, "at": self.at}


@dataclass(frozen=True)
class IndexDefault:
    """An index's default search pipeline as it is now: the setting (None: unset), its `_meta`, and our record."""

    index: str
    default: str | None
    meta: Mapping[str, Any]
    record: Promotion | None
    default_exists: bool  # whether the pipeline the default names exists (True when unset or `_none`)

    @property
    def effective(self) -> str | None:
        """The pipeline a search that names none runs through, or None."""
        return None if self.default in (None, NO_PIPELINE) else self.default

    def describe(self, pipeline: str) -> str:
        """One line for `status`: promoted or not, what rollback would restore, a dangling default."""
        if self.effective is not None and not self.default_exists:
            return (f"default search pipeline {self.effective} does NOT exist: every search of this index that names "
                    "no pipeline fails")
        if self.effective == pipeline:
            if self.record is not None and self.record.pipeline == pipeline:
                return f"promoted: {pipeline} is the default (rollback restores {shown(self.record.previous)})"
            return f"{pipeline} is the default, set outside os-rerank (nothing recorded to roll back to)"
        return f"not promoted (default search pipeline: {shown(self.default)})"


@dataclass(frozen=True)
class Write:
    """One request a plan sends, with why."""

    method: str
    path: str
    body: dict[str, Any]
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "path": self.path, "body": self.body, "reason": self.reason}


@dataclass(frozen=True)
class Change:
    """A promote or rollback plan for one index: the writes in order (none: nothing to do, and `reason` says why)."""

    command: str
    index: str
    pipeline: str
    before: str | None  # the setting now
    after: str | None  # the setting once applied
    writes: tuple[Write, ...]
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"command": self.command, "index": self.index, "pipeline": self.pipeline, "before": self.before,
                "after": self.after, "writes": [w.to_dict() for w in self.writes], "reason": self.reason}


def shown(value: str | None) -> str:
    """How a default reads in output: `none (unset)` for an absent setting."""
    return "none (unset)" if value is None else value


def check_index_name(name: str) -> str:
    """`name` when OpenSearch could hold an index by it; UsageError otherwise (it becomes part of a path)."""
    if not name or name != name.lower() or name.startswith(("_", "-", "+")) or _BAD_INDEX_CHARS & set(name) \
            or name in (".", ".."):
        raise UsageError(f"--index {name!r} is not an index name OpenSearch accepts",
                         fix="lowercase, without \\ / * ? \" < > | , # : % or spaces, not starting with _ - +")
    return name


# --- reading (GETs only) -------------------------------------------------------------------------------------------


def read_default(cluster: Cluster, index: str) -> IndexDefault:
    """The index's default pipeline, `_meta` and record; ClusterError when the index does not exist."""
    settings = cluster.request("GET", f"/{index}/_settings", params={"flat_settings": "true"}, missing_ok=True)
    if settings is None:
        raise ClusterError(f"no index named {index!r}",
                           fix="run `os-rerank setup` first, or name an existing index with --index")
    entry: dict[str, Any] = settings.get(index) or next(iter(settings.values()), {})
    value = (entry.get("settings") or {}).get(DEFAULT_PIPELINE)
    mapping = cluster.request("GET", f"/{index}/_mapping") or {}
    mentry: dict[str, Any] = mapping.get(index) or next(iter(mapping.values()), {})
    meta = dict((mentry.get("mappings") or {}).get("_meta") or {})
    default = None if value is None else str(value)
    exists = True
    if default not in (None, NO_PIPELINE):
        exists = cluster.request("GET", f"/_search/pipeline/{default}", missing_ok=True) is not None
    return IndexDefault(index, default, meta, parse_record(meta.get(RECORD_KEY)), exists)


def parse_record(value: Any) -> Promotion | None:
    """Our record from `_meta`, or None when absent or not in our shape (then it is not ours to trust)."""
    if not isinstance(value, Mapping) or not isinstance(value.get("pipeline"), str):
        return None
    previous = value.get("previous")
    return Promotion(value["pipeline"], None if previous is None else str(previous), str(value.get("at", "")))


def indices_defaulting_to(cluster: Cluster, pipeline: str) -> list[str]:
    """Every index (hidden ones too) whose default search pipeline is `pipeline`."""
    result = cluster.request("GET", f"/_all/_settings/{DEFAULT_PIPELINE}",
                             params={"flat_settings": "true", "expand_wildcards": "all"}) or {}
    return sorted(name for name, entry in result.items()
                  if ((entry or {}).get("settings") or {}).get(DEFAULT_PIPELINE) == pipeline)


# --- planning (pure) -----------------------------------------------------------------------------------------------


def _setting_write(index: str, value: str | None, reason: str) -> Write:
    return Write("PUT", f"/{index}/_settings", {DEFAULT_PIPELINE: value}, reason)


def _meta_write(index: str, meta: Mapping[str, Any], record: Promotion | None, reason: str) -> Write:
    kept = {k: v for k, v in meta.items() if k != RECORD_KEY}  # _meta is replaced whole: keep everyone else's keys
    if record is not None:
        kept[RECORD_KEY] = record.to_dict()
    return Write("PUT", f"/{index}/_mapping", {"_meta": kept}, reason)


def plan_promote(state: IndexDefault, pipeline: str, *, now: str) -> Change:
    """The writes that make `pipeline` the default of `state.index`, recording the default it replaces."""
    index, current, record = state.index, state.default, state.record
    if current == pipeline:
        if record is not None and record.pipeline == pipeline:
            why = f"{pipeline} is already the default of {index} (rollback restores {shown(record.previous)})"
        else:
            why = (f"{pipeline} is already the default of {index}, set outside os-rerank: nothing is recorded, so "
                   "rollback will not guess what came before")
        return Change(PROMOTE, index, pipeline, current, current, (), why)
    new = Promotion(pipeline, current, now)
    writes = (
        # The record first: if the setting write then fails, a rerun finds the record and the same default.
        _meta_write(index, state.meta, new, f"record the default it replaces ({shown(current)}) in _meta."
                                                 f"{RECORD_KEY}"),
        _setting_write(index, pipeline, f"make {pipeline} the default search pipeline (was {shown(current)})"),
    )
    return Change(PROMOTE, index, pipeline, current, pipeline, writes,
                  f"{index}: default search pipeline {shown(current)} -> {pipeline}")


def plan_rollback(state: IndexDefault, pipeline: str) -> Change:
    """The writes that restore the recorded default of `state.index`; ClusterError when it cannot know it."""
    index, current, record = state.index, state.default, state.record
    if record is None or record.pipeline != pipeline:
        if current == pipeline:
            raise ClusterError(
                f"{pipeline} is the default search pipeline of {index}, but os-rerank did not promote it: nothing "
                "records the default it replaced",
                fix=f"set {DEFAULT_PIPELINE} of {index} yourself (null removes it)")
        return Change(ROLLBACK, index, pipeline, current, current, (),
                      f"{index} is not promoted (default search pipeline: {shown(current)})")
    forget = _meta_write(index, state.meta, None, f"remove _meta.{RECORD_KEY}")
    if current == record.previous:  # the setting is back already (a rollback stopped after its first write)
        return Change(ROLLBACK, index, pipeline, current, current, (forget,),
                      f"{index}: default already {shown(current)}; forget the promotion record")
    if current != pipeline:
        raise ClusterError(
            f"the default search pipeline of {index} is {shown(current)}, not {pipeline} which os-rerank promoted "
            f"(it replaced {shown(record.previous)}): someone changed it since, and rollback will not undo that",
            fix=f"set {DEFAULT_PIPELINE} of {index} yourself, or run `os-rerank promote` again to record the "
            "current default")
    restore = _setting_write(index, record.previous,
                             f"restore the default promote replaced: {shown(record.previous)}"
                             + (" (removes the setting)" if record.previous is None else ""))
    return Change(ROLLBACK, index, pipeline, current, record.previous, (restore, forget),
                  f"{index}: default search pipeline {pipeline} -> {shown(record.previous)}")


def now_text() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


# --- applying ------------------------------------------------------------------------------------------------------


def apply_change(cluster: Cluster, change: Change, on_event: OnEvent | None = None) -> int:
    """Send the plan's writes, exactly, in order; the number sent."""
    for write in change.writes:
        cluster.request(write.method, write.path, body=write.body)
        if on_event is not None:
            on_event(Event("update", "request", write.path, f"{write.method} {write.path}: {write.reason}"))
    return len(change.writes)


def change_lines(change: Change, *, dry_run: bool) -> list[str]:
    """The plan as printed: a line saying what changes, then each request and its exact body."""
    import json

    if not change.writes:
        return [f"No changes. {change.reason}."]
    lines = [f"{change.command}: {change.reason}" + (" (dry run: nothing sent)" if dry_run else "")]
    for write in change.writes:
        lines.append(f"# {write.reason}")
        lines.append(f"{write.method} {write.path}")
        lines.append(json.dumps(write.body, ensure_ascii=False, indent=2))
    return lines


# --- the commands --------------------------------------------------------------------------------------------------


@dataclass
class PromoteResult:
    """What promote or rollback planned and did; `writes` counts what was sent (0 on a dry run)."""

    change: Change
    dry_run: bool
    writes: int = 0
    verified: bool = False
    gate: Any = None  # gate.GateResult when --require-gain ran

    def to_dict(self) -> dict[str, Any]:
        return {**self.change.to_dict(), "dry_run": self.dry_run, "writes_sent": self.writes,
                "verified": self.verified, "gate": self.gate.to_json() if self.gate is not None else None}


def run_promote(cluster: Cluster, config: Any, *, index: str, dry_run: bool = False,
                on_event: OnEvent | None = None, gate: Callable[[], Any] | None = None,
                allow_failing_searches: bool = False) -> PromoteResult:
    """Plan the promotion; unless a dry run, check the endpoint (and the gate), then apply it under the lock.

    A predict roundtrip that fails right now refuses the promotion (VerifyError, exit 6), and so does a gate that
    fails (GateError): the default pipeline is what every search of the index runs through.
    """
    from ..mlcommons import MODELS, find_one
    from . import lock
    from .plan_compare import pipeline_fields
    from .preflight import preflight
    from .state import read_pipeline
    from .verify import verify

    preflight(cluster)
    pipeline = config.pipeline.name
    live = read_pipeline(cluster, pipeline)
    if live is None:
        raise ClusterError(f"no search pipeline named {pipeline!r}: nothing to promote",
                           fix="run `os-rerank setup` first")
    if not pipeline_fields(live)["ignore_failure"] and not allow_failing_searches:
        raise UsageError(
            f"pipeline {pipeline} has ignore_failure off: promoted, every search of {index} that does not carry "
            "ext.rerank.query_context, and every _count, would fail (seen on 2.19.1: the rerank processor throws a "
            "NullPointerException without a query context)",
            fix="set pipeline.ignore_failure: true and run `os-rerank setup` (such searches are then served "
            "without reranking), or pass --allow-failing-searches when every caller sends the rerank context")
    change = plan_promote(read_default(cluster, index), pipeline, now=now_text())
    result = PromoteResult(change, dry_run)
    if dry_run or not change.writes:
        return result
    report = verify(cluster, config, find_one(cluster, MODELS, config.model.name).id)
    if not report.passed:
        from ..errors import VerifyError

        raise VerifyError(f"promote refused: the rerank pipeline's model failed its predict roundtrip just now; "
                          f"{index} keeps its default ({shown(change.before)})", report.differences,
                          fix="fix the endpoint (`os-rerank verify` shows the same check), then promote again")
    result.verified = True
    if on_event is not None:
        on_event(note("verify: predict roundtrip and reranked search ok"))
    if gate is not None:
        result.gate = gate()
        if not result.gate.passed:
            return result  # the CLI prints the gate and exits with its status; nothing is written
    with lock.held(cluster, config, "promote", on_event):
        result.change = plan_promote(read_default(cluster, index), pipeline, now=now_text())
        result.writes = apply_change(cluster, result.change, on_event)
    return result


def run_rollback(cluster: Cluster, config: Any, *, index: str, dry_run: bool = False,
                 on_event: OnEvent | None = None) -> PromoteResult:
    """Plan the rollback and, unless a dry run, apply it under the lock.

    No predict check: a rollback is what one runs when the endpoint is failing, and it only restores a setting.
    """
    from . import lock
    from .preflight import preflight

    preflight(cluster)
    pipeline = config.pipeline.name
    change = plan_rollback(read_default(cluster, index), pipeline)
    result = PromoteResult(change, dry_run)
    if dry_run or not change.writes:
        return result
    with lock.held(cluster, config, "rollback", on_event):
        result.change = plan_rollback(read_default(cluster, index), pipeline)
        result.writes = apply_change(cluster, result.change, on_event)
    return result


def plan_release(cluster: Cluster, index: str, pipeline: str) -> tuple[Change, str]:
    """Before `pipeline` is deleted: the change that gives `index`, whose default it is, the default it had before
    the promotion (or none, when nothing is recorded), so its searches do not fail on a missing pipeline; and what
    it does, in words. Reads only."""
    state = read_default(cluster, index)
    if state.record is not None and state.record.pipeline == pipeline:
        change = plan_rollback(state, pipeline)
        return change, f"default search pipeline of {index} restored to {shown(change.after)} (as recorded by promote)"
    change = Change(ROLLBACK, index, pipeline, pipeline, None, (
        _setting_write(index, None, "its pipeline is about to be deleted"),), "nothing recorded")
    return change, f"default search pipeline of {index} removed (set outside os-rerank; nothing recorded to restore)"
