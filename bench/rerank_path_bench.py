"""What a rerank costs on the way through ML Commons, with the endpoint's own work taken out. Prints figures.

Against a real node (--url, default the test-plain node at http://127.0.0.1:9250: `os-rerank local up --name
test-plain --port 9250`) and a local endpoint that does no work (constant scores, HF text-classification shape),
it registers and deploys one remote model per connector:

  tutorial        the OpenSearch cross-encoder tutorial's connector, as published (its escape() and all)
  os-rerank src   os-rerank's connector with the scripts as written in painless/ (comments, indentation)
  compacted       the scripts compacted (resources.compact_painless) but without the marker
  os-rerank sent  os-rerank's connector as `setup` sends it (resources.script_as_sent: marker + compacted)

and times `_predict/text_similarity` at 10 and 100 documents, one client and 8, p50 / p95 and calls/s. Then the
endpoint called directly (no ML Commons) for the floor. --legacy-transport serves the answers as before (head and
body in two writes, Nagle on) to show what that cost.

    python bench/rerank_path_bench.py [--url URL] [--calls 200] [--legacy-transport]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KEY, SECRET = "AKIDBENCHFAKEKEY0002", "bench-secret-2"
DOCS = ("Washington, D.C. is the capital of the United States, on the Potomac river. " * 3).strip()


class ZeroWork:
    name = "zero-work"

    def score(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        return [0.5] * len(pairs)


def connectors(url: str) -> dict[str, dict[str, Any]]:
    from os_rerank.contracts import REQUEST_BODY, get_contract
    from os_rerank.resources import compact_painless, read_painless, script_as_sent

    tutorial = json.loads((ROOT / "tests" / "data" / "tutorial" / "cross-encoder-connector.json").read_text())
    tutorial["actions"][0]["url"] = url
    contract = get_contract("hf-text-classification")
    pre, post = read_painless(contract.pre_process_file), read_painless(contract.post_process_file)
    out = {"tutorial": tutorial}
    variants = {"os-rerank src": (pre, post), "compacted": (compact_painless(pre), compact_painless(post)),
                "os-rerank sent": (script_as_sent(pre), script_as_sent(post))}
    for label, (p, q) in variants.items():
        out[label] = {
            "name": f"bench {label}", "description": "bench", "version": 1, "protocol": "aws_sigv4",
            "parameters": {"region": "us-west-2", "service_name": "sagemaker"},
            "actions": [{"action_type": "predict", "method": "POST", "url": url,
                         "headers": {"content-type": "application/json"}, "request_body": REQUEST_BODY,
                         "pre_process_function": p, "post_process_function": q}]}
    for body in out.values():
        body["credential"] = {"access_key": KEY, "secret_key": SECRET}
    return out


def timed(call: Any, calls: int, clients: int) -> tuple[float, float, float]:
    """p50 ms, p95 ms, calls per second."""
    times: list[float] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        for _ in range(n):
            started = time.perf_counter()
            call()
            with lock:
                times.append((time.perf_counter() - started) * 1000)

    for _ in range(10):
        call()  # warm up
    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(calls // clients,)) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    ordered = sorted(times)
    return statistics.median(ordered), ordered[int(0.95 * (len(ordered) - 1))], len(ordered) / wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:9250")
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--legacy-transport", action="store_true")
    args = parser.parse_args()

    import urllib.request

    from opensearchpy import OpenSearch

    from os_rerank.contracts import get_contract
    from os_rerank.server import app
    from os_rerank.server.app import EndpointServer

    if args.legacy_transport:  # the answer's head and body in two writes, Nagle on: the transport before the fix
        original = app._Handler._send
        app._Handler.disable_nagle_algorithm = False

        def legacy(self: Any, reply: Any, started: float) -> None:
            body, reply_headers = reply.body, reply.headers
            self.send_response(reply.status)
            for key, value in reply_headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        app._Handler._send = legacy  # type: ignore[method-assign]
        assert original is not None
    endpoint = EndpointServer(get_contract("hf-text-classification"), ZeroWork(), endpoint_name="bench",
                              credentials={KEY: SECRET}).start()
    client = OpenSearch(hosts=[args.url], timeout=120)
    invoke = f"{endpoint.url}/endpoints/bench/invocations"
    # Add this run's endpoint to the trusted list and put the list back afterwards: the node may be shared (the
    # test suite's node is the default), and other entries there belong to someone else.
    regex_key = "plugins.ml_commons.trusted_connector_endpoints_regex"
    current = client.cluster.get_settings(flat_settings=True)["persistent"]
    before = current.get(regex_key)
    entry = "^" + re.escape(invoke) + "$"
    client.cluster.put_settings(body={"persistent": {regex_key: [*(before or []), entry],
                                                     "plugins.ml_commons.connector.private_ip_enabled": True}})
    ml = "/_plugins/_ml"
    made: list[tuple[str, str]] = []
    print(f"transport: {'legacy (two writes, Nagle)' if args.legacy_transport else 'one write, TCP_NODELAY'}; "
          f"{args.calls} calls per row; p50 / p95 ms, calls/s")
    try:
        models = {}
        for label, body in connectors(invoke).items():
            created = client.transport.perform_request("POST", f"{ml}/connectors/_create", body=body)
            connector_id = created["connector_id"]
            model_id = client.transport.perform_request("POST", f"{ml}/models/_register", params={"deploy": "true"},
                                                        body={"name": f"bench {label}", "function_name": "remote",
                                                              "connector_id": connector_id})["model_id"]
            made.append((connector_id, model_id))
            for _ in range(120):
                if client.transport.perform_request("GET", f"{ml}/models/{model_id}").get("model_state") == "DEPLOYED":
                    break
                time.sleep(0.5)
            models[label] = model_id
        for n in (10, 100):
            docs = [DOCS] * n
            for clients in (1, 8):
                print(f"-- {n} documents, {clients} client(s)")
                for label, model_id in models.items():
                    def call(model_id: str = model_id, docs: list[str] = docs) -> None:
                        client.transport.perform_request("POST", f"{ml}/_predict/text_similarity/{model_id}",
                                                         body={"query_text": "what is the capital?", "text_docs": docs})
                    p50, p95, rate = timed(call, args.calls, clients)
                    print(f"   {label:<15} {p50:7.2f} / {p95:7.2f} ms   {rate:7.1f}/s")
                payload = json.dumps({"inputs": [{"text": "q", "text_pair": d} for d in docs]}).encode()

                def direct(payload: bytes = payload) -> None:
                    request = urllib.request.Request(f"{endpoint.url}/invocations", data=payload,
                                                     headers={"Content-Type": "application/json"})
                    with urllib.request.urlopen(request) as reply:
                        reply.read()
                p50, p95, rate = timed(direct, args.calls, clients)
                print(f"   {'endpoint alone':<15} {p50:7.2f} / {p95:7.2f} ms   {rate:7.1f}/s")
    finally:
        for connector_id, model_id in made:
            client.transport.perform_request("POST", f"{ml}/models/{model_id}/_undeploy")
            client.transport.perform_request("DELETE", f"{ml}/models/{model_id}")
            client.transport.perform_request("DELETE", f"{ml}/connectors/{connector_id}")
        client.cluster.put_settings(body={"persistent": {regex_key: before}})
        endpoint.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
