"""The embedding endpoint contracts, described once (as os_rerank/contracts.py describes the rerank ones).

An embedding contract is how one kind of endpoint wants a list of texts and how it answers with one vector per
text. The same `EmbeddingContract` serves every consumer: the connector (Painless file names, `request_body`,
`connector_parameters`), the validator and `setup`'s dimension probe (`build_request`, `parse_response`) and the
local endpoint (`parse_request`, `build_response`).

What ML Commons 2.19 does with an embedding connector (ml-commons 2.19.1.0, read for this module):
- neural-search (`MLCommonsClientAccessor.inferenceSentences`, used by the `text_embedding` ingest processor and
  the `neural` query) sends a `TextDocsInputDataSet` with FunctionName TEXT_EMBEDDING: only the texts, no query.
  A `_predict` of algorithm `text_embedding` with `{"text_docs": [...]}` is the same input.
- `ConnectorUtils.escapeMLInput` JSON-escapes every text (Gson, `processTextDoc`) before the pre-process script
  sees it as `params.text_docs`: the same escaping the rerank scripts rely on, so the same body-as-JSON-text design
  delivers the texts exactly (painless/README.md).
- `RemoteConnectorExecutor.calculateChunkSize`: with a script of our own and no `input_docs_processed_step_size`
  connector parameter, ML Commons calls the endpoint once per text; with that parameter, with that many texts per
  call. The responses are put back in input order. Each call's post-process returns one tensor per text.
- neural-search (`buildVectorFromResponse`) reads every tensor's `data` of every output, in order, as the vectors:
  our post-process scripts return `{"name": "sentence_embedding", "data_type": "FLOAT32", "shape": [dim],
  "data": [...]}` per text, as ML Commons' own `connector.post_process.default.embedding` does.

Pure: no I/O; safe to import without boto3 or opensearch-py.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .contracts import REQUEST_BODY, ContractError, _json_kind, _list, _obj, _only_keys, _text, load_body

# The name ML Commons' default embedding post-process gives each vector; ours use the same.
TENSOR_NAME = "sentence_embedding"


@dataclass(frozen=True)
class EmbeddingContract:
    """One embedding endpoint contract: both directions of the wire format, and the Painless scripts that speak it."""

    name: str
    summary: str
    example_request: str
    example_response: str
    build_request: Callable[[Sequence[str]], Any]
    parse_response: Callable[[Any, int], list[list[float]]]
    parse_request: Callable[[Any], list[str]]
    build_response: Callable[[Sequence[Sequence[float]]], Any]
    # Files under painless/: the connector's pre- and post-process scripts for this contract.
    pre_process_file: str
    post_process_file: str
    # The local endpoint also answers on this path, besides /invocations (TEI serves /embed).
    extra_path: str | None = None
    # Texts per endpoint call from ML Commons (`input_docs_processed_step_size`); None: one text per call.
    batch_size: int | None = None

    @property
    def request_body(self) -> str:
        return REQUEST_BODY

    @property
    def connector_parameters(self) -> dict[str, str]:
        """What this contract adds to the connector's `parameters` (ML Commons reads them as strings)."""
        return {} if self.batch_size is None else {"input_docs_processed_step_size": str(self.batch_size)}


def decode_texts(contract: EmbeddingContract, body: bytes | str) -> list[str]:
    """The texts in `body` (UTF-8 JSON) read with `contract`; ContractError in one line otherwise."""
    payload = load_body(body, contract.example_request)
    try:
        return contract.parse_request(payload)
    except ContractError as exc:
        raise ContractError(f"{contract.name}: {exc}") from None
    except RecursionError:
        raise ContractError("body nests arrays or objects too deeply to read") from None


# --- shape checks ---------------------------------------------------------------------------------------------------


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ContractError(f"{where}: expected a number, got {_json_kind(value)}")
    number = float(value)
    if not math.isfinite(number):
        raise ContractError(f"{where}: not a finite number ({value!r})")
    return number


def _vector(value: Any, where: str) -> list[float]:
    items = _list(value, where)
    if not items:
        raise ContractError(f"{where}: empty vector")
    return [_number(v, f"{where}[{k}]") for k, v in enumerate(items)]


def _rows(rows: list[list[float]], n_texts: int, where: str) -> list[list[float]]:
    if len(rows) != n_texts:
        raise ContractError(f"{where}: {len(rows)} vectors for {n_texts} texts; every text needs one")
    for k, row in enumerate(rows):
        if len(row) != len(rows[0]):
            raise ContractError(f"{where}[{k}]: dimension {len(row)}, but vector 0 has {len(rows[0])}")
    return rows


def _texts(value: Any, where: str) -> list[str]:
    if isinstance(value, str):  # a single text, as the pipelines and TEI also take
        return [value]
    texts = [_text(t, f"{where}[{k}]") for k, t in enumerate(_list(value, where))]
    if not texts:
        raise ContractError(f"{where}: no texts to embed")
    return texts


def mean_pool(value: Any, where: str) -> list[float]:
    """One vector from one item of a feature-extraction answer: [dim] as it is, [tokens][dim] or
    [1][tokens][dim] averaged over the tokens (the pipeline's batch axis of one dropped first)."""
    items = _list(value, where)
    if items and isinstance(items[0], list) and items[0] and isinstance(items[0][0], list):
        if len(items) != 1:
            raise ContractError(f"{where}: expected [1][tokens][dim], got {len(items)} on the first axis")
        items, where = items[0], f"{where}[0]"
    if not items:
        raise ContractError(f"{where}: empty")
    if not isinstance(items[0], list):
        return _vector(items, where)
    tokens = [_vector(t, f"{where}[{k}]") for k, t in enumerate(items)]
    dim = len(tokens[0])
    for k, token in enumerate(tokens):
        if len(token) != dim:
            raise ContractError(f"{where}[{k}]: dimension {len(token)}, but token 0 has {dim}")
    # Summed token by token in input order, then divided: the post-process script does exactly this in doubles,
    # so both give the same bits.
    out = []
    for j in range(dim):
        total = 0.0
        for token in tokens:
            total += token[j]
        out.append(total / len(tokens))
    return out


# --- 1. the seed's custom inference.py: {"inputs": [t, ...]} -> {"vector_embedding": [[...], ...]} ------------------


def _inputs_build_request(texts: Sequence[str]) -> Any:
    return {"inputs": list(texts)}


def _vector_embedding_parse_response(body: Any, n_texts: int) -> list[list[float]]:
    obj = _obj(body, "response")
    if "vector_embedding" not in obj:
        raise ContractError("response: missing 'vector_embedding'")
    rows = _list(obj["vector_embedding"], "response.vector_embedding")
    return _rows([_vector(r, f"response.vector_embedding[{k}]") for k, r in enumerate(rows)], n_texts,
                 "response.vector_embedding")


def _inputs_parse_request(body: Any) -> list[str]:
    obj = _obj(body)
    # The HF toolkit forwards "parameters" as pipeline keyword arguments; accepted and ignored like the rerank one.
    _only_keys(obj, {"inputs", "parameters"})
    if "inputs" not in obj:
        raise ContractError("body: missing 'inputs'")
    return _texts(obj["inputs"], "inputs")


def _vector_embedding_build_response(vectors: Sequence[Sequence[float]]) -> Any:
    return {"vector_embedding": [[float(v) for v in row] for row in vectors]}


# --- 2. Hugging Face inference toolkit, HF_TASK=feature-extraction ---------------------------------------------------
# The toolkit calls transformers' FeatureExtractionPipeline with `inputs`; for a list of n texts it answers one item
# per text, each the model's last hidden state for that text alone, [1][tokens][dim] (batch axis of one, no padding).
# A sentence-transformers pipeline answers [dim] per text instead. We accept either, and [tokens][dim], and mean-pool
# token-level items over every token: with one text per batch there is no padding, so that is sentence-transformers'
# mean pooling. No normalisation: the k-NN index uses cosine similarity, which ignores length.


def _hf_parse_response(body: Any, n_texts: int) -> list[list[float]]:
    rows = _list(body, "response")
    return _rows([mean_pool(r, f"response[{k}]") for k, r in enumerate(rows)], n_texts, "response")


def _hf_build_response(vectors: Sequence[Sequence[float]]) -> Any:
    # The pipeline's shape, [n][1][tokens][dim], with one "token": the pooled vector, which pools to itself exactly.
    return [[[[float(v) for v in row]]] for row in vectors]


# --- 3. Text Embeddings Inference /embed -----------------------------------------------------------------------------


def _tei_build_request(texts: Sequence[str]) -> Any:
    return {"inputs": list(texts), "truncate": True}


def _tei_parse_response(body: Any, n_texts: int) -> list[list[float]]:
    rows = _list(body, "response")
    return _rows([_vector(r, f"response[{k}]") for k, r in enumerate(rows)], n_texts, "response")


def _tei_parse_request(body: Any) -> list[str]:
    obj = _obj(body)
    # TEI's optional flags; we embed the same way whatever they say.
    _only_keys(obj, {"inputs", "normalize", "truncate", "truncation_direction", "prompt_name"})
    if "inputs" not in obj:
        raise ContractError("body: missing 'inputs'")
    return _texts(obj["inputs"], "inputs")


def _tei_build_response(vectors: Sequence[Sequence[float]]) -> Any:
    return [[float(v) for v in row] for row in vectors]


EMBEDDING_CONTRACTS: dict[str, EmbeddingContract] = {
    c.name: c
    for c in (
        EmbeddingContract(
            name="vector-embedding",
            pre_process_file="embedding-inputs.pre.painless",
            post_process_file="vector-embedding.post.painless",
            summary="custom inference.py with mean pooling and L2 normalisation (the seed's embedding handler)",
            example_request='{"inputs": [t, ...]}',
            example_response='{"vector_embedding": [[x, ...], ...]}  (input order)',
            build_request=_inputs_build_request,
            parse_response=_vector_embedding_parse_response,
            parse_request=_inputs_parse_request,
            build_response=_vector_embedding_build_response,
            batch_size=16,
        ),
        EmbeddingContract(
            name="hf-feature-extraction",
            pre_process_file="embedding-inputs.pre.painless",
            post_process_file="hf-feature-extraction.post.painless",
            summary="Hugging Face inference toolkit, HF_TASK=feature-extraction (token vectors, mean-pooled here)",
            example_request='{"inputs": [t, ...]}',
            example_response="[[[[x, ...], ...]], ...]  ([n][1][tokens][dim]; [n][dim] also accepted)",
            build_request=_inputs_build_request,
            parse_response=_hf_parse_response,
            parse_request=_inputs_parse_request,
            build_response=_hf_build_response,
            # One text per call: pooling tokens x dim numbers in Painless must stay under its 1,000,000-iteration
            # loop budget (512 tokens x 1,024 dims is about half of it).
            batch_size=None,
        ),
        EmbeddingContract(
            name="tei-embed",
            pre_process_file="tei-embed.pre.painless",
            post_process_file="embedding-rows.post.painless",
            summary="Hugging Face Text Embeddings Inference /embed",
            example_request='{"inputs": [t, ...], "truncate": true}',
            example_response="[[x, ...], ...]  (input order)",
            build_request=_tei_build_request,
            parse_response=_tei_parse_response,
            parse_request=_tei_parse_request,
            build_response=_tei_build_response,
            extra_path="/embed",
            batch_size=16,
        ),
    )
}

EMBEDDING_CONTRACT_NAMES: tuple[str, ...] = tuple(EMBEDDING_CONTRACTS)


def get_embedding_contract(name: str) -> EmbeddingContract:
    """The embedding contract called `name`; ContractError naming the known ones otherwise."""
    try:
        return EMBEDDING_CONTRACTS[name]
    except KeyError:
        raise ContractError(f"unknown embedding contract {name!r}; known: {', '.join(EMBEDDING_CONTRACT_NAMES)}"
                            ) from None
