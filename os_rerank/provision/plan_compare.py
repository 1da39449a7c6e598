"""How a live resource is compared with the body os-rerank would send: only the fields we send count, numbers
compare as numbers, and each difference reads `path (live -> want)`. The plan uses it to choose between "no change"
and "update"; status and promote use it to compare pipelines.
"""

from __future__ import annotations

from typing import Any


def connector_differences(want: dict[str, Any], live: dict[str, Any]) -> list[str]:
    """The fields we send (credential aside) whose live value differs, as `path (live -> want)` lines."""
    diffs: list[str] = []

    def differ(path: str, a: Any, b: Any) -> None:
        diffs.append(f"{path} ({short(a)} -> {short(b)})")

    for key in ("description", "version", "protocol"):
        if key in want and str(live.get(key)) != str(want[key]):
            differ(key, live.get(key), want[key])
    live_params = live.get("parameters") or {}
    for key, value in (want.get("parameters") or {}).items():
        if str(live_params.get(key)) != str(value):
            differ(f"parameters.{key}", live_params.get(key), value)
    live_cc = live.get("client_config") or {}
    for key, value in (want.get("client_config") or {}).items():
        if not same_scalar(live_cc.get(key), value):
            differ(f"client_config.{key}", live_cc.get(key), value)
    access = access_of(want)
    if access is not None:
        have = live_access(live)
        if (have["access_mode"], sorted(have["backend_roles"])) != (access["access_mode"],
                                                                   sorted(access["backend_roles"])):
            diffs.append(f"access ({access_text(have)} -> {access_text(access)})")
    want_actions = want.get("actions") or []
    live_actions = live.get("actions") or []
    if len(live_actions) != len(want_actions):
        differ("actions", f"{len(live_actions)} action(s)", f"{len(want_actions)}")
        return diffs
    for i, (w, lv) in enumerate(zip(want_actions, live_actions, strict=True)):
        for key, value in w.items():
            got = lv.get(key)
            if key in ("action_type", "method"):
                same = str(got).lower() == str(value).lower()
            elif key == "headers":
                same = {str(k).lower(): v for k, v in (got or {}).items()} == {k.lower(): v for k, v in value.items()}
            else:
                same = got == value
            if not same:
                differ(f"actions[{i}].{key}", got, value)
    return diffs



def same_scalar(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return float(a) == float(b)
    return str(a) == str(b)



def short(value: Any, limit: int = 40) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"



def access_of(body: dict[str, Any]) -> dict[str, Any] | None:
    """{"access_mode", "backend_roles"} of a rendered connector or model group body, None when it sets no access."""
    if "access_mode" not in body:
        return None
    return {"access_mode": body["access_mode"], "backend_roles": [str(r) for r in body.get("backend_roles") or []]}



def live_access(live: dict[str, Any]) -> dict[str, Any]:
    """The access of a connector or model group as GET returns it (`access`, `backend_roles`)."""
    return {"access_mode": live.get("access"), "backend_roles": [str(r) for r in live.get("backend_roles") or []]}



def access_text(access: dict[str, Any]) -> str:
    roles = access.get("backend_roles") or []
    return f"{access.get('access_mode') or 'unset'}" + (f" to backend roles {', '.join(roles)}" if roles else "")



def pipeline_fields(body: dict[str, Any]) -> dict[str, Any]:
    """The parts of a rerank pipeline body os-rerank manages, for comparison."""
    processors = body.get("response_processors") or []
    rerank: dict[str, Any] = next(
        (p["rerank"] for p in processors if isinstance(p, dict) and isinstance(p.get("rerank"), dict)), {})
    return {
        "description": body.get("description"),
        "processors": [next(iter(p), None) for p in processors if isinstance(p, dict)],
        "model_id": (rerank.get("ml_opensearch") or {}).get("model_id"),
        "document_fields": (rerank.get("context") or {}).get("document_fields"),
        "ignore_failure": bool(rerank.get("ignore_failure", False)),
        "request_processors": body.get("request_processors") or [],
    }

