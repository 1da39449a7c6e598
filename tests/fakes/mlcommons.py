"""ML Commons: connectors, model groups, models, tasks and predict, with the real texts per version.

Error texts and behaviours follow docs/ml-commons.md (connectors, cluster settings, models, failures); the anchors
in comments point to its sections.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import time
from typing import Any

from .http import Request, Response, Router
from .predict import RemoteCaller, check_trusted_url, substitute_url
from .state import (
    ML,
    NODE_ID,
    ApiError,
    ClusterState,
    doc_write_response,
    illegal_argument,
    load_shape,
    now_ms,
    ordered_like,
    status_exception,
)

CONNECTOR_INDEX = ".plugins-ml-connector"
MODEL_INDEX = ".plugins-ml-model"
GROUP_INDEX = ".plugins-ml-model-group"
MASTER_KEY_NOT_READY = ("The ML encryption master key has not been initialized yet. "
                        "Please retry after waiting for 10 seconds.")
DEPLOYED_STATES = ("DEPLOYED", "DEPLOYING", "PARTIALLY_DEPLOYED")
_ACCESS_FIELDS = ("backend_roles", "add_all_backend_roles", "access_mode")


class SearchLag:
    """What ML Commons' `_search` APIs see: each system index as it was `lag` seconds ago.

    A real 2.19.1 node searches its system indices near-real-time: for up to a second after a write, a search misses
    a new resource, still returns a deleted one, or shows a model REGISTERED that a GET by id shows DEPLOYED. The
    double is never kinder: every change it observes (after each request) becomes searchable `lag` seconds later.
    """

    def __init__(self, lag: float) -> None:
        self.lag = lag
        # index -> doc id -> [(when it became current, the doc then or None once deleted)]
        self.history: dict[str, dict[str, list[tuple[float, dict[str, Any] | None]]]] = {}

    def observe(self, index: str, docs: dict[str, dict[str, Any]], now: float) -> None:
        known = self.history.setdefault(index, {})
        for doc_id in set(known) | set(docs):
            versions = known.setdefault(doc_id, [])
            current = docs.get(doc_id)
            if not versions or versions[-1][1] != current:
                versions.append((now, copy.deepcopy(current)))

    def age(self, seconds: float) -> None:
        """Move every observed change `seconds` into the past (as if that much time had gone by)."""
        for docs in self.history.values():
            for doc_id, versions in docs.items():
                docs[doc_id] = [(when - seconds, doc) for when, doc in versions]

    def visible(self, index: str, now: float) -> dict[str, dict[str, Any]]:
        out = {}
        for doc_id, versions in self.history.get(index, {}).items():
            seen = [doc for when, doc in versions if when <= now - self.lag]
            if seen and seen[-1] is not None:
                out[doc_id] = copy.deepcopy(seen[-1])
        return out


class MLCommons:
    """The ML Commons REST surface over a `ClusterState`."""

    def __init__(self, state: ClusterState, caller: RemoteCaller, *, master_key_failures: int = 0,
                 polls_until_deployed: int = 1, search_lag: float = 0.3) -> None:
        self.state = state
        self.caller = caller
        self.lag = SearchLag(search_lag)
        self.master_key_failures = master_key_failures
        self.polls_until_deployed = polls_until_deployed
        self._deploy_countdown: dict[str, int] = {}
        # A deployed remote model keeps the connector it loaded at deploy time (why update needs an undeploy).
        self.deployed_connectors: dict[str, dict[str, Any]] = {}

    def routes(self, router: Router) -> None:
        base = "/_plugins/_ml"
        router.add("POST", base + "/connectors/_create", self.create_connector)
        router.add("GET|POST", base + "/connectors/_search", self.search_connectors)
        router.add("GET", base + "/connectors/(?P<id>[^/]+)", self.get_connector)
        router.add("PUT", base + "/connectors/(?P<id>[^/]+)", self.update_connector)
        router.add("DELETE", base + "/connectors/(?P<id>[^/]+)", self.delete_connector)
        router.add("POST", base + "/model_groups/_register", self.register_group)
        router.add("GET|POST", base + "/model_groups/_search", self.search_groups)
        router.add("GET", base + "/model_groups/(?P<id>[^/]+)", self.get_group)
        router.add("DELETE", base + "/model_groups/(?P<id>[^/]+)", self.delete_group)
        router.add("PUT", base + "/model_groups/(?P<id>[^/]+)", self.update_group)
        router.add("POST", base + "/models/_register", self.register_model)
        router.add("GET|POST", base + "/models/_search", self.search_models)
        router.add("POST", base + "/models/(?P<id>[^/]+)/_deploy", self.deploy_model)
        router.add("POST", base + "/models/(?P<id>[^/]+)/_undeploy", self.undeploy_model)
        router.add("POST", base + "/models/(?P<id>[^/]+)/_predict", self.predict_model)
        router.add("GET", base + "/models/(?P<id>[^/]+)", self.get_model)
        router.add("DELETE", base + "/models/(?P<id>[^/]+)", self.delete_model)
        router.add("GET", base + "/tasks/(?P<id>[^/]+)", self.get_task)
        router.add("POST", base + "/_predict/(?P<algo>[^/]+)/(?P<id>[^/]+)", self.predict_algorithm)

    # --- connectors (#connectors, #models) ----------------------------------------------------------------------------

    def _connector_access_control(self) -> bool:
        """Connector access control is on: the security plugin is installed and the setting is true (2.19.1)."""
        enabled = str(self.state.setting("plugins.ml_commons.connector_access_control_enabled")).lower() == "true"
        return enabled and "opensearch-security" in self.state.plugins

    def _connector_access(self, body: dict[str, Any], req: Request) -> dict[str, Any]:
        """The access fields a created connector stores (TransportCreateConnectorAction, 2.19.1), or its refusals."""
        given = any(k in body for k in _ACCESS_FIELDS)
        if not self._connector_access_control():
            if body.get("access_mode") is not None or body.get("add_all_backend_roles") is not None or (
                    body.get("backend_roles")):
                raise illegal_argument("You cannot specify connector access control parameters because the Security "
                                       "plugin or connector access control is disabled on your cluster.")
            return {}
        roles = body.get("backend_roles")
        mode = body.get("access_mode") or ("restricted" if roles else "private")
        if mode in ("public", "private") and roles:
            raise illegal_argument("You can specify backend roles only for a connector with the restricted access "
                                   "mode.")
        if mode == "restricted" and not roles:
            raise illegal_argument("You must specify at least one backend role or make the connector public/private "
                                   "for registering it.")
        return {**({"backend_roles": list(roles)} if given and roles is not None else {}),
                "owner": _owner(req), "access": mode}

    def _validate_connector(self, body: dict[str, Any], *, creating: bool) -> None:
        version = self.state.version
        for key, text in (("name", "Connector name is null"), ("version", "Connector version is null"),
                          ("protocol", "Connector protocol is null")):
            if body.get(key) is None:
                raise illegal_argument(text)
        protocols = ["aws_sigv4", "http"] + (["mcp_sse", "mcp_streamable_http"] if version >= (3, 0, 0) else [])
        if body["protocol"] not in protocols:
            raise illegal_argument(f"Unsupported connector protocol. Please use one of [{', '.join(protocols)}]")
        credential = body.get("credential")
        if creating and version >= (2, 19, 0) and not credential:
            raise illegal_argument("Connector credential is null or empty list")
        if body["protocol"] == "aws_sigv4":
            credential = credential or {}
            params = body.get("parameters") or {}
            if not credential.get("access_key") or not credential.get("secret_key"):
                raise illegal_argument("Missing credential")
            if not (params.get("region") or credential.get("region")):
                raise illegal_argument("Missing region")
            if not (params.get("service_name") or credential.get("service_name")):
                raise illegal_argument("Missing service name")
        for action in body.get("actions") or []:
            for key, text in (("action_type", "action type can't be null"), ("method", "method can't be null"),
                              ("url", "url can't be null")):
                if not action.get(key):
                    raise illegal_argument(text)
            check_trusted_url(self.state, substitute_url(action["url"], _string_params(body.get("parameters"))))

    def _stored_connector(self, body: dict[str, Any], created: int) -> dict[str, Any]:
        version = self.state.version
        doc: dict[str, Any] = {
            "name": body["name"],
            "version": str(body["version"]),
            "description": body.get("description"),
            "protocol": body["protocol"],
            "parameters": _string_params(body.get("parameters")),
            "actions": [_stored_action(a) for a in body.get("actions") or []],
            "created_time": created,
            "last_updated_time": now_ms(),
            "credential": {k: str(v) for k, v in (body.get("credential") or {}).items()},
        }
        if doc["description"] is None:
            del doc["description"]
        if body.get("client_config") is not None and version >= (2, 13, 0):
            doc["client_config"] = _client_config(body["client_config"], version)
        return doc

    def create_connector(self, req: Request) -> Response:
        body = _object(req.json({}))
        self._validate_connector(body, creating=True)
        access = self._connector_access(body, req)
        with self.state.lock:
            if self.master_key_failures > 0:
                self.master_key_failures -= 1
                raise ApiError(404, "resource_not_found_exception", MASTER_KEY_NOT_READY)
            connector_id = self.state.new_id()
            self.state.connectors[connector_id] = {**self._stored_connector(body, now_ms()), **access}
            self.state.next_seq(CONNECTOR_INDEX)
        return Response(200, {"connector_id": connector_id})

    def _connector(self, connector_id: str) -> dict[str, Any]:
        doc = self.state.connectors.get(connector_id)
        if doc is None:
            raise status_exception(404, f"Failed to find connector with the provided connector id: {connector_id}")
        return doc

    @staticmethod
    def public_connector(doc: dict[str, Any]) -> dict[str, Any]:
        return ordered_like("connector_get", {k: copy.deepcopy(v) for k, v in doc.items() if k != "credential"})

    def get_connector(self, req: Request) -> Response:
        with self.state.lock:
            return Response(200, self.public_connector(self._connector(req.match["id"])))

    def observe(self) -> None:
        """Note the current state of each system index, for the searches that will see it later (SearchLag)."""
        now = time.monotonic()
        with self.state.lock:
            self.lag.observe(CONNECTOR_INDEX, {k: self.public_connector(v) for k, v in self.state.connectors.items()},
                             now)
            self.lag.observe(GROUP_INDEX, copy.deepcopy(self.state.model_groups), now)
            self.lag.observe(MODEL_INDEX, {k: ordered_like("model_get", copy.deepcopy(v))
                                           for k, v in self.state.models.items()}, now)

    def _searched(self, index: str, req: Request) -> Response:
        self.observe()
        return Response(200, search_docs(index, self.lag.visible(index, time.monotonic()), req.json({}),
                                         exists=index in self.state.seq_no))

    def search_connectors(self, req: Request) -> Response:
        return self._searched(CONNECTOR_INDEX, req)

    def _models_using(self, connector_id: str, states: tuple[str, ...] | None = None) -> list[str]:
        return [mid for mid, m in self.state.models.items()
                if m.get("connector_id") == connector_id and (states is None or m["model_state"] in states)]

    def update_connector(self, req: Request) -> Response:
        connector_id = req.match["id"]
        if self.state.version < (2, 12, 0) and not self.state.flag(ML + "update_connector.enabled"):
            raise status_exception(400, "Update connector API is currently disabled. To enable it, update the "
                                        "setting \"plugins.ml_commons.update_connector.enabled\" to true.")
        body = _object(req.json({}))
        with self.state.lock:
            current = self._connector(connector_id)
            using = self._models_using(connector_id, DEPLOYED_STATES)
            if using:
                raise status_exception(400, f"{len(using)} models are still using this connector, please undeploy "
                                            f"the models first: [{', '.join(using)}]")
            merged = copy.deepcopy(current)
            for key, value in body.items():
                if key == "parameters":
                    merged["parameters"].update(_string_params(value))
                elif key in ("name", "description", "protocol", "credential", "actions", "client_config",
                             "version"):
                    merged[key] = value
            incoming = {k: v for k, v in merged.items() if k not in ("created_time", "last_updated_time")}
            self._validate_connector(incoming, creating=False)
            stored = self._stored_connector(incoming, current["created_time"])
            if "client_config" not in body and "client_config" in current:
                stored["client_config"] = current["client_config"]
            # 2.19.1 (HttpConnector.update) takes the access fields as sent, unchecked: a mode alone keeps the roles
            for key in ("backend_roles", "owner", "access"):
                if key in current:
                    stored[key] = current[key]
            if body.get("backend_roles") is not None:
                stored["backend_roles"] = [str(r) for r in body["backend_roles"]]
            if body.get("access_mode") is not None:
                stored["access"] = body["access_mode"]
            def comparable(doc: dict[str, Any]) -> dict[str, Any]:
                return {k: v for k, v in doc.items() if k != "last_updated_time" and not k.startswith("_")}

            unchanged = comparable(stored) == comparable(current)
            version = current.setdefault("_version", 1)
            if unchanged:
                return Response(200, doc_write_response(CONNECTOR_INDEX, connector_id, "noop", version,
                                                        self.state.seq_no.get(CONNECTOR_INDEX, 0)))
            stored["_version"] = version + 1
            self.state.connectors[connector_id] = stored
            seq = self.state.next_seq(CONNECTOR_INDEX)
        return Response(200, doc_write_response(CONNECTOR_INDEX, connector_id, "updated", version + 1, seq))

    def delete_connector(self, req: Request) -> Response:
        connector_id = req.match["id"]
        with self.state.lock:
            if connector_id not in self.state.connectors:  # 2.19.1 answers 200, result not_found (security_403.json)
                seq = self.state.next_seq(CONNECTOR_INDEX)
                return Response(200, doc_write_response(CONNECTOR_INDEX, connector_id, "not_found", 1, seq,
                                                        forced_refresh=True))
            using = self._models_using(connector_id)
            if using:
                raise status_exception(409, f"{len(using)} models are still using this connector, please delete or "
                                            f"update the models first: [{', '.join(using)}]")
            doc = self.state.connectors.pop(connector_id)
            seq = self.state.next_seq(CONNECTOR_INDEX)
        return Response(200, doc_write_response(CONNECTOR_INDEX, connector_id, "deleted",
                                                doc.get("_version", 1) + 1, seq, forced_refresh=True))

    # --- model groups -------------------------------------------------------------------------------------------

    def _new_group(self, name: str, description: str | None) -> str:
        group_id = self.state.new_id()
        ts = now_ms()
        doc = {"name": name, "latest_version": 0, "description": description, "access": "public",
               "created_time": ts, "last_updated_time": ts}
        if description is None:
            del doc["description"]
        self.state.model_groups[group_id] = doc
        self.state.next_seq(GROUP_INDEX)
        return group_id

    def _access_control(self) -> bool:
        """Model access control is on: the security plugin is installed and the setting is true (2.19.1)."""
        enabled = str(self.state.setting("plugins.ml_commons.model_access_control_enabled")).lower() == "true"
        return enabled and "opensearch-security" in self.state.plugins

    def _access(self, body: dict[str, Any]) -> dict[str, Any]:
        """The access fields of a register/update body as the group stores them; ML Commons' refusals otherwise."""
        if not any(k in body for k in _ACCESS_FIELDS):
            return {"access": "private"} if self._access_control() else {}
        if not self._access_control():
            raise illegal_argument("You cannot specify model access control parameters because the Security plugin "
                                   "or model access control is disabled on your cluster.")
        mode, roles = body.get("access_mode") or "restricted", list(body.get("backend_roles") or [])
        if mode in ("public", "private") and roles:
            raise illegal_argument("You can specify backend roles only for a model group with the restricted access "
                                   "mode.")
        if mode == "restricted" and not roles:
            raise illegal_argument("You must specify one or more backend roles or add all backend roles to register "
                                   "a restricted model group.")
        return {"access": mode, **({"backend_roles": roles} if roles else {})}

    def update_group(self, req: Request) -> Response:
        body = _object(req.json({}))
        access = self._access(body)
        with self.state.lock:
            group = self.state.model_groups.get(req.match["id"])
            if group is None:
                raise status_exception(404, "Failed to find model group with the provided model group id: "
                                            + req.match["id"])
            if any(k in body for k in _ACCESS_FIELDS):  # public/private clear the backend roles, as 2.19.1 does
                group.pop("backend_roles", None)
                group.update(access)
            for key in ("name", "description"):
                if key in body:
                    group[key] = body[key]
            group["last_updated_time"] = now_ms()
            self.state.next_seq(GROUP_INDEX)
        return Response(200, {"status": "Updated"})

    def register_group(self, req: Request) -> Response:
        body = _object(req.json({}))
        access = self._access(body)
        name = body.get("name")
        if not name or not str(name).strip():
            raise illegal_argument("Model group name must not be empty")
        with self.state.lock:
            for group_id, group in self.state.model_groups.items():
                if group["name"] == name:
                    raise illegal_argument(
                        f"The name you provided is already being used by a model group with ID: {group_id}.")
            group_id = self._new_group(name, body.get("description"))
            self.state.model_groups[group_id].update(access)
        return Response(200, {"model_group_id": group_id, "status": "CREATED"})

    def get_group(self, req: Request) -> Response:
        with self.state.lock:
            group = self.state.model_groups.get(req.match["id"])
            if group is None:
                raise status_exception(404, "Failed to find model group")
            return Response(200, copy.deepcopy(group))

    def search_groups(self, req: Request) -> Response:
        return self._searched(GROUP_INDEX, req)

    def delete_group(self, req: Request) -> Response:
        group_id = req.match["id"]
        with self.state.lock:
            if group_id not in self.state.model_groups:  # 2.19.1 answers 200, result not_found (security_403.json)
                seq = self.state.next_seq(GROUP_INDEX)
                return Response(200, doc_write_response(GROUP_INDEX, group_id, "not_found", 1, seq,
                                                        forced_refresh=True))
            if any(m.get("model_group_id") == group_id for m in self.state.models.values()):
                raise status_exception(409, "Cannot delete the model group when it has associated model versions")
            del self.state.model_groups[group_id]
            seq = self.state.next_seq(GROUP_INDEX)
        return Response(200, doc_write_response(GROUP_INDEX, group_id, "deleted", 2, seq, forced_refresh=True))

    # --- models and tasks (#models) -----------------------------------------------------------------------------------

    def _new_task(self, model_id: str, task_type: str, *, is_async: bool) -> str:
        task_id = self.state.new_id()
        ts = now_ms()
        self.state.tasks[task_id] = ordered_like("task_get", {
            "model_id": model_id, "task_type": task_type, "function_name": "REMOTE", "state": "COMPLETED",
            "worker_node": [NODE_ID], "create_time": ts, "last_update_time": ts, "is_async": is_async})
        return task_id

    def register_model(self, req: Request) -> Response:
        body = _object(req.json({}))
        if not body.get("name"):
            raise illegal_argument("model name is null")
        if str(body.get("function_name", "")).lower() != "remote":
            raise illegal_argument("The double only registers remote models (function_name \"remote\")")
        connector_id = body.get("connector_id")
        if not connector_id:
            raise illegal_argument("Connector id is null")  # an inline `connector` is not modelled
        with self.state.lock:
            self._connector(connector_id)
            group_id = body.get("model_group_id")
            if group_id is not None:
                if group_id not in self.state.model_groups:
                    raise status_exception(404, f"Failed to find model group with ID: {group_id}")
            else:  # TransportRegisterModelAction: reuse the group named like the model, or create it
                group_id = next((g for g, d in self.state.model_groups.items() if d["name"] == body["name"]), None)
                if group_id is None:
                    group_id = self._new_group(body["name"], body.get("description"))
            group = self.state.model_groups[group_id]
            group["latest_version"] += 1
            group["last_updated_time"] = now_ms()
            model_id = self.state.new_id()
            ts = now_ms()
            model = {
                "name": body["name"], "model_group_id": group_id, "algorithm": "REMOTE",
                "model_version": str(group["latest_version"]), "description": body.get("description"),
                "model_state": "REGISTERED", "created_time": ts, "last_updated_time": ts,
                "is_hidden": False, "connector_id": connector_id,
            }
            if model["description"] is None:
                del model["description"]
            if body.get("interface") is not None and self.state.version >= (2, 14, 0):
                model["interface"] = body["interface"]
            self.state.models[model_id] = model
            self.state.next_seq(MODEL_INDEX)
            task_id = self._new_task(model_id, "REGISTER_MODEL", is_async=False)
            if req.flag("deploy"):  # fire-and-forget: poll GET model until DEPLOYED
                model["model_state"] = "DEPLOYING"
                self._new_task(model_id, "DEPLOY_MODEL", is_async=True)
                self._deploy_countdown[model_id] = self.polls_until_deployed
                if self.polls_until_deployed <= 0:
                    self._finish_deploy(model_id)
        return Response(200, {"task_id": task_id, "status": "CREATED", "model_id": model_id})

    def _model(self, model_id: str) -> dict[str, Any]:
        model = self.state.models.get(model_id)
        if model is None:
            raise status_exception(404, "Failed to find model")
        return model

    def _finish_deploy(self, model_id: str) -> None:
        model = self.state.models[model_id]
        ts = now_ms()
        model.update({"model_state": "DEPLOYED", "last_updated_time": ts, "last_deployed_time": ts,
                      "auto_redeploy_retry_times": 0, "planning_worker_node_count": 1,
                      "current_worker_node_count": 1, "planning_worker_nodes": [NODE_ID],
                      "deploy_to_all_nodes": True})
        self.deployed_connectors[model_id] = copy.deepcopy(self.state.connectors[model["connector_id"]])
        self._deploy_countdown.pop(model_id, None)

    def get_model(self, req: Request) -> Response:
        model_id = req.match["id"]
        with self.state.lock:
            if model_id not in self.state.models:
                raise status_exception(404, f"Failed to find model with the provided model id: {model_id}")
            model = self._model(model_id)
            if model_id in self._deploy_countdown:
                self._deploy_countdown[model_id] -= 1
                if self._deploy_countdown[model_id] < 0:
                    self._finish_deploy(model_id)
            return Response(200, ordered_like("model_get", copy.deepcopy(model)))

    def search_models(self, req: Request) -> Response:
        return self._searched(MODEL_INDEX, req)

    def deploy_model(self, req: Request) -> Response:
        model_id = req.match["id"]
        with self.state.lock:
            if MODEL_INDEX not in self.state.seq_no:
                # A fresh 2.19.1 node: the model index is made by the first register, and until then a deploy
                # answers 500 index_not_found, not the 404 "Failed to find model" it gives afterwards.
                raise ApiError(500, "index_not_found_exception", f"no such index [{MODEL_INDEX}]",
                               extra={"index": MODEL_INDEX, "resource.id": MODEL_INDEX,
                                      "resource.type": "index_or_alias", "index_uuid": "_na_"})
            self._model(model_id)
            self._finish_deploy(model_id)
            task_id = self._new_task(model_id, "DEPLOY_MODEL", is_async=True)
        return Response(200, {"task_id": task_id, "task_type": "DEPLOY_MODEL", "status": "COMPLETED"})

    def undeploy_model(self, req: Request) -> Response:
        model_id = req.match["id"]
        with self.state.lock:
            model = self._model(model_id)
            was = model["model_state"] in DEPLOYED_STATES
            if was:
                for key in ("planning_worker_nodes", "deploy_to_all_nodes"):
                    model.pop(key, None)
                model.update({"model_state": "UNDEPLOYED", "last_updated_time": now_ms(),
                              "planning_worker_node_count": 0, "current_worker_node_count": 0,
                              "last_undeployed_time": now_ms()})
                self.deployed_connectors.pop(model_id, None)
                self._deploy_countdown.pop(model_id, None)
        return Response(200, {NODE_ID: {"stats": {model_id: "undeployed" if was else "not_found"}}})

    def delete_model(self, req: Request) -> Response:
        model_id = req.match["id"]
        with self.state.lock:
            model = self._model(model_id)
            if model["model_state"] in ("DEPLOYED", "DEPLOYING", "PARTIALLY_DEPLOYED"):
                raise status_exception(400, "Model cannot be deleted in deploying or deployed state. Try undeploy "
                                            "model first then delete")
            del self.state.models[model_id]
            seq = self.state.next_seq(MODEL_INDEX)
        return Response(200, doc_write_response(MODEL_INDEX, model_id, "deleted", 2, seq, forced_refresh=True))

    def get_task(self, req: Request) -> Response:
        with self.state.lock:
            task = self.state.tasks.get(req.match["id"])
            if task is None:
                raise status_exception(404, "Failed to find task")
            return Response(200, copy.deepcopy(task))

    # --- predict (#predict, #models, #failures) -----------------------------------------------------------------------

    def _ready_connector(self, model_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """(model, connector as loaded at deploy); auto-deploys where the version and setting allow it."""
        with self.state.lock:
            model = self._model(model_id)
            if model["model_state"] != "DEPLOYED" or model_id not in self.deployed_connectors:
                auto = self.state.version >= (2, 13, 0) and self.state.flag(ML + "model_auto_deploy.enable")
                if not auto:
                    raise illegal_argument("Model not ready yet. Please deploy the model first.")
                self._finish_deploy(model_id)
            return copy.deepcopy(model), copy.deepcopy(self.deployed_connectors[model_id])

    def text_similarity(self, model_id: str, query: Any, docs: Any) -> list[dict[str, Any]]:
        """The output tensors of a TEXT_SIMILARITY predict: the path `_predict/text_similarity` and rerank share."""
        if self.state.version < (2, 12, 0):
            raise illegal_argument("Wrong input type")
        if not isinstance(docs, list) or not docs:
            raise illegal_argument("No text documents were provided")
        if query is None:
            raise ApiError(500, "null_pointer_exception", None)
        model, connector = self._ready_connector(model_id)
        self._validate_interface(model, {"algorithm": "TEXT_SIMILARITY", "query_text": query, "text_docs": docs})
        return self.caller.text_similarity(connector, str(query), [str(d) for d in docs])

    def text_embedding(self, model_id: str, docs: list[str]) -> list[list[float]]:
        """The vectors of a TEXT_EMBEDDING predict, as neural-search reads them (every tensor's data, in order)."""
        _, connector = self._ready_connector(model_id)
        tensors = [t for chunk in self.caller.text_embedding(connector, [str(d) for d in docs]) for t in chunk]
        vectors = [t.get("data") for t in tensors]
        if any(v is None for v in vectors):
            raise ApiError(500, "illegal_state_exception", "Model inference failed")
        return [list(v) for v in vectors if v is not None]

    def _validate_interface(self, model: dict[str, Any], instance: dict[str, Any]) -> None:
        schema = (model.get("interface") or {}).get("input")
        if not schema or self.state.version < (2, 14, 0):
            return
        if isinstance(schema, str):
            schema = json.loads(schema)
        problem = _schema_problem(instance, schema)
        if problem:
            raise illegal_argument("Error validating input schema, if you think this is expected, please update "
                                   f"your 'input' field in the 'interface' field for this model: {problem}")

    def predict_algorithm(self, req: Request) -> Response:
        algo = req.match["algo"].lower()
        body = _object(req.json({}))
        if algo == "text_embedding":
            _, connector = self._ready_connector(req.match["id"])
            docs = body.get("text_docs")
            if not isinstance(docs, list) or not docs:
                raise illegal_argument("empty docs")
            # One inference result per endpoint call (2.19.1): all 16 texts of a call in one output.
            return Response(200, {"inference_results": [
                {"output": chunk, "status_code": 200}
                for chunk in self.caller.text_embedding(connector, [str(d) for d in docs])]})
        if algo != "text_similarity":
            raise illegal_argument(f"The double only models text_similarity and text_embedding predict, not {algo}")
        tensors = self.text_similarity(req.match["id"], body.get("query_text"), body.get("text_docs"))
        return Response(200, _predict_body(tensors))

    def predict_model(self, req: Request) -> Response:
        body = _object(req.json({}))
        _, connector = self._ready_connector(req.match["id"])
        parameters = body.get("parameters") or {}
        return Response(200, _predict_body(self.caller.with_parameters(connector, _string_params(parameters))))


# --- helpers ---------------------------------------------------------------------------------------------------


def _predict_body(tensors: list[dict[str, Any]]) -> dict[str, Any]:
    body = load_shape("predict")
    body["inference_results"] = [{"output": tensors, "status_code": 200}]
    return body


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "parse_exception", "request body is required to be a JSON object")
    return body


def _string_params(params: Any) -> dict[str, str]:
    """Connector parameters as ML Commons stores them: strings kept, anything else re-serialised as JSON."""
    return {k: v if isinstance(v, str) else json.dumps(v, separators=(",", ":")) for k, v in (params or {}).items()}


def _stored_action(action: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(action)
    out["action_type"] = str(action["action_type"]).upper()
    return out


def _client_config(given: dict[str, Any], version: tuple[int, int, int]) -> dict[str, Any]:
    """`ConnectorClientConfig.parse` fills every field it knows with its default (docs/ml-commons.md#client-config)."""
    timeout = 30 if version >= (3, 7, 0) else 30000
    out: dict[str, Any] = {"max_connection": 30, "connection_timeout": timeout, "read_timeout": timeout}
    if version >= (2, 15, 0):
        out.update({"retry_backoff_millis": 200, "retry_timeout_seconds": 30, "max_retry_times": 0,
                    "retry_backoff_policy": "constant"})
    if version >= (3, 5, 0):
        out["skip_ssl_verification"] = False
    out.update({k: v for k, v in given.items() if k in out})
    return out


def _schema_problem(instance: Any, schema: dict[str, Any]) -> str | None:
    try:
        import jsonschema  # optional: a fuller check when it is installed
    except ImportError:
        missing = [k for k in schema.get("required", []) if k not in instance]
        return f"required property {missing[0]!r} not found" if missing else None
    try:
        jsonschema.validate(instance, schema)
    except jsonschema.ValidationError as exc:
        return exc.message
    return None


def _term_values(spec: Any) -> list[Any]:
    if isinstance(spec, dict):
        spec = spec.get("value", spec.get("query"))
    return spec if isinstance(spec, list) else [spec]


def _field(doc: dict[str, Any], name: str) -> Any:
    name = name.removesuffix(".keyword")
    value: Any = doc
    for part in name.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _clauses(spec: dict[str, Any], key: str) -> list[Any]:
    value = spec.get(key, [])
    return value if isinstance(value, list) else [value]


# Fields of ML Commons' system indices that are analyzed text (with a `.keyword` subfield), as a real 2.19.1 node
# maps them: `connector_id` of a model is not in the model index's mapping, so it is mapped dynamically as text, and
# a term query on it compares with lower-cased word tokens (an id with capitals or `-` never matches it).
TEXT_FIELDS = {
    CONNECTOR_INDEX: {"name", "description"},
    MODEL_INDEX: {"name", "description", "connector_id"},
    GROUP_INDEX: {"name", "description"},
}


def _tokens(value: Any) -> list[str]:
    """The standard analyzer, near enough: lower-cased runs of letters, digits and underscores."""
    return re.findall(r"\w+", str(value).lower())


def doc_matches(doc_id: str, doc: dict[str, Any], query: dict[str, Any] | None, index: str = "") -> bool:
    """The query DSL subset ML Commons' own `_search` endpoints are asked for (match_all, term(s), match, ids, bool)."""
    if not query:
        return True
    (kind, spec), = query.items()
    if kind == "match_all":
        return True
    if kind == "ids":
        return doc_id in spec.get("values", [])
    if kind in ("term", "terms"):
        (name, value), = ((k, v) for k, v in spec.items() if k != "boost")
        if name in TEXT_FIELDS.get(index, ()):
            return any(str(v) in _tokens(_field(doc, name)) for v in _term_values(value))
        return _field(doc, name) in _term_values(value)
    if kind == "match":
        (name, value), = spec.items()
        words = str(_term_values(value)[0]).lower().split()
        return any(w in str(_field(doc, name) or "").lower().split() for w in words)
    if kind == "bool":
        must = _clauses(spec, "must") + _clauses(spec, "filter")
        should = _clauses(spec, "should")
        must_not = _clauses(spec, "must_not")
        return (all(doc_matches(doc_id, doc, q, index) for q in must)
                and (not should or any(doc_matches(doc_id, doc, q, index) for q in should))
                and not any(doc_matches(doc_id, doc, q, index) for q in must_not))
    raise ApiError(400, "parsing_exception", f"unknown query [{kind}]")


def search_docs(index: str, docs: dict[str, dict[str, Any]], body: dict[str, Any], *,
                exists: bool = True) -> dict[str, Any]:
    """A search response over a system index (connectors, models, model groups).

    Before the index exists ML Commons answers with an empty response whose max_score is 0.0, not null.
    """
    hits = [(i, d) for i, d in docs.items() if doc_matches(i, d, body.get("query"), index)]
    size = int(body.get("size", 10))
    start = int(body.get("from", 0))
    source_filter = body.get("_source")
    page = []
    for doc_id, doc in hits[start:start + size]:
        source = {k: v for k, v in doc.items() if not k.startswith("_")}
        if isinstance(source_filter, dict) and source_filter.get("excludes"):
            source = {k: v for k, v in source.items() if k not in source_filter["excludes"]}
        page.append({"_index": index, "_id": doc_id, "_version": doc.get("_version", 1), "_seq_no": 0,
                     "_primary_term": 1, "_score": 1.0, "_source": source})
    response = load_shape("search")
    response["hits"] = {"total": {"value": len(hits), "relation": "eq"},
                        "max_score": 1.0 if page else (None if exists else 0.0),
                        "hits": page}
    return response


def _owner(req: Request) -> dict[str, Any]:
    """The `owner` ML Commons stores on a connector: the basic-auth user (the double's users hold no backend roles)."""
    auth = next((v for k, v in req.headers.items() if k.lower() == "authorization"), "")
    name = base64.b64decode(auth[6:]).decode("utf-8").split(":", 1)[0] if auth.startswith("Basic ") else None
    return {"name": name, "backend_roles": [], "roles": [], "custom_attribute_names": [],
            "user_requested_tenant": None}
