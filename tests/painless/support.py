"""Shared pieces of the Painless-layer tests: versions, connector parameters, strict JSON, endpoint answers."""

from __future__ import annotations

import json
import random
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from os_rerank.contracts import Contract, ScoreRequest
from os_rerank.resources import read_painless, script_as_sent

# Gson HTML-safe input escaping (2.12-3.2) and plain (3.3+).
PRE_VERSIONS = [(2, 19, 0), (3, 3, 0)]
# Post-process response parsing: Gson, numbers all Double (up to 3.4); Jackson, ints stay integral (3.5+).
POST_VERSIONS = [(3, 4, 0), (3, 5, 0)]
# What render puts in the connector's "parameters" (templates/connector.json.j2).
CONNECTOR_PARAMETERS = {"region": "us-west-2", "service_name": "sagemaker"}
# Contracts whose endpoint answers best first, as [{"index", "score"}].
RANKED = {"query-documents-topk", "tei-rerank"}
DATA = Path(__file__).resolve().parent.parent / "data"


def _no_constant(name: str) -> Any:
    raise ValueError(f"not JSON: {name}")


def strict_loads(text: str) -> Any:
    """json.loads that also refuses NaN / Infinity (RFC 8259 has neither); raw control characters are refused too."""
    return json.loads(text, parse_constant=_no_constant)


def f32(x: float) -> float:
    """`x` rounded to the nearest float32, as a double: what survives ML Commons' FLOAT32 tensors exactly."""
    return float(struct.unpack("<f", struct.pack("<f", x))[0])


def scripts(contract: Contract, *, sent: bool = True) -> tuple[str, str]:
    """The contract's pre- and post-process scripts as os-rerank sends them (compacted), or as written."""
    pre, post = read_painless(contract.pre_process_file), read_painless(contract.post_process_file)
    return (script_as_sent(pre), script_as_sent(post)) if sent else (pre, post)


def endpoint_answer(contract: Contract, query: str, docs: Sequence[str], scores: Sequence[float], *, seed: int) -> Any:
    """The endpoint's answer (contract.build_response), a ranked list shuffled so order cannot be relied on."""
    request = ScoreRequest(tuple((query, d) for d in docs), topk=len(docs))
    body = contract.build_response(request, scores)
    if contract.name in RANKED:
        random.Random(seed).shuffle(body)
    return body


def similarity_tensors(scores: Sequence[float]) -> list[dict[str, Any]]:
    """The tensors neural-search needs: one FLOAT32 "similarity" per document, in input order."""
    return [{"name": "similarity", "data_type": "FLOAT32", "shape": [1], "data": [s]} for s in scores]

# Texts that break naive escaping or substitution: every contract must carry each one exactly.
ADVERSARIAL = [
    'say "hi"',
    "back\\slash \\\\ double",
    'literal \\" and \\u0041 and \\n as text',
    "tab\there cr\rhere lf\nhere",
    "".join(chr(c) for c in range(0x20)) + "\x7f",
    "line\u2028para\u2029end",
    "<b>it's</b> & a=b > c",
    "한국어 문서입니다",
    "हिन्दी में एक दस्तावेज़",
    "emoji 😀 astral 𝄞 𠀋",
    "",
    "${parameters.inputs}",
    "${parameters.body}",
    "$${x}",
    "${parameters.region:-x}",
    "$ alone, $$, ${",
    "\\u0024{parameters.body}",
    '{"a": 1}',
    "[1, 2]",
    "}]\"'",
]
