"""The dense first stage in tests: stand-in embedding endpoints per contract, and a config that uses one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from os_rerank.embedding_contracts import EMBEDDING_CONTRACT_NAMES, get_embedding_contract
from tests.backends import Backend, start_fake_backend, start_real_backend
from tests.fakes.embedder import EmbeddingEndpoint

_SLOT = int(os.environ.get("OS_RERANK_TEST_SLOT", "0") or 0)
EMBEDDING_PORTS = dict(zip(EMBEDDING_CONTRACT_NAMES, range(18185 + 10 * _SLOT, 18188 + 10 * _SLOT), strict=True))
QUERY = "What is the capital of the United States?"
DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.fixture(scope="module")
def embedders() -> Iterator[dict[str, EmbeddingEndpoint]]:
    """One stand-in embedding endpoint per contract for the module, on the slot's fixed ports where free."""
    out = {}
    for name, port in EMBEDDING_PORTS.items():
        try:
            out[name] = EmbeddingEndpoint(get_embedding_contract(name), port=port).start()
        except OSError:
            out[name] = EmbeddingEndpoint(get_embedding_contract(name)).start()
    yield out
    for endpoint in out.values():
        endpoint.stop()


@pytest.fixture(params=["fake", "real", "real-secure"])
def dense_backend(request: pytest.FixtureRequest, tmp_path: Path, aws_test_env: None) -> Iterator[Backend]:
    if request.param == "fake":
        yield from start_fake_backend(request.getfixturevalue("mlcommons_glue"), tmp_path)
    else:
        yield from start_real_backend(request.getfixturevalue("real_clusters"), request.param, tmp_path)


def dense_config(backend: Backend, endpoint: EmbeddingEndpoint, name: str = "dense.yaml", *,
                 sections: dict[str, dict[str, Any]] | None = None, **embedding: Any) -> str:
    """A config with an embedding section for `endpoint` (`embedding` overrides its keys; `sections` others)."""
    section = {"endpoint_url": endpoint.invocation_url, "local_endpoint_url": endpoint.url,
               "contract": endpoint.contract.name, "model_name": "os-rerank scenario embedding",
               "connector_name": "os-rerank scenario embedding connector", "ingest_pipeline": "os_rerank_scn_embed",
               "hybrid_pipeline": "os_rerank_scn_hybrid", **embedding}
    return str(backend.config(name, **(sections or {}), embedding=section))


