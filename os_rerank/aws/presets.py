"""The cross-encoders `endpoint deploy` knows by name, and the endpoint contract each speaks on the stock container.

Pure data: safe to import without boto3. Every preset deploys on the Hugging Face inference container with
HF_TASK=text-classification, which answers `[{"label": "LABEL_0", "score": s}, ...]` in input order: the
`hf-text-classification` contract. For a single-logit cross-encoder the pipeline applies a sigmoid, so scores are in
(0, 1) and keep the model's order. The other contracts (`pairs-scores`, `query-documents-topk`, `tei-rerank`) are
what the custom `inference.py` files of docs/sources.md speak; for them `endpoint deploy` packages os-rerank's own
handler (`handler_for`), which speaks every contract with serve's scoring.
"""

from __future__ import annotations

from dataclasses import dataclass

STOCK_CONTRACT = "hf-text-classification"
STOCK = "stock"
OS_RERANK = "os-rerank"


@dataclass(frozen=True)
class Preset:
    """One documented cross-encoder: its Hugging Face id, the contract it speaks, and where it comes from."""

    name: str
    hf_model_id: str
    contract: str
    instance_type: str  # a sensible default; deploy.instance_type overrides it
    summary: str
    # Contracts this model also speaks when deployed with custom inference code, and which seed shows that code.
    custom_code: str = ""


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            name="ms-marco-minilm-l6",
            hf_model_id="cross-encoder/ms-marco-MiniLM-L-6-v2",
            contract=STOCK_CONTRACT,
            instance_type="ml.m5.xlarge",
            summary="English, 22M parameters; the model of the OpenSearch cross-encoder reranking tutorial",
        ),
        Preset(
            name="bge-reranker-base",
            hf_model_id="BAAI/bge-reranker-base",
            contract=STOCK_CONTRACT,
            instance_type="ml.m5.xlarge",
            summary="Chinese and English, 278M parameters; the stock container gives LABEL_0 sigmoid scores",
            custom_code="pairs-scores: the LangChain SageMaker example's inference.py returns raw logits",
        ),
        Preset(
            name="bge-reranker-large",
            hf_model_id="BAAI/bge-reranker-large",
            contract=STOCK_CONTRACT,
            instance_type="ml.g5.xlarge",
            summary="Chinese and English, 560M parameters; a GPU instance keeps latency down",
            custom_code=("query-documents-topk: the Bedrock samples notebook's inference.py returns the top k as "
                         "[{index, score}]"),
        ),
        Preset(
            name="ko-reranker",
            hf_model_id="Dongjin-kr/ko-reranker",
            contract=STOCK_CONTRACT,
            instance_type="ml.g5.xlarge",
            summary="Korean fine-tune of bge-reranker-large (its authors deploy it on the stock container)",
        ),
    )
}

PRESET_NAMES: tuple[str, ...] = tuple(PRESETS)


def handler_for(handler: str, contract: str, *, model_dir: bool, custom_image: bool) -> str:
    """`stock` or `os-rerank`: what answers requests for deploy.handler, sagemaker.contract, deploy.model_dir and
    deploy.image_uri. `auto` packages os-rerank's handler whenever the stock pipeline would not speak the contract,
    or there is a local model to package; a custom image is trusted to bring its own code, as before."""
    if handler != "auto":
        return handler
    if custom_image:
        return STOCK
    return OS_RERANK if model_dir or contract != STOCK_CONTRACT else STOCK


def contract_warnings(preset: Preset | None, contract: str, *, custom_image: bool, handler: str = STOCK) -> list[str]:
    """Why `contract` (sagemaker.contract) may not be what the endpoint `endpoint deploy` makes will speak."""
    if contract == STOCK_CONTRACT or handler == OS_RERANK:
        return []
    if preset is not None:
        extra = f" ({preset.custom_code})" if preset.custom_code else ""
        return [
            f"sagemaker.contract is {contract!r} but preset {preset.name!r} on the stock container speaks "
            f"{preset.contract!r}{extra}; set sagemaker.contract: {preset.contract}, or deploy.handler: os-rerank "
            "to package os-rerank's handler, which speaks it"
        ]
    if not custom_image:
        return [
            f"sagemaker.contract is {contract!r} but the stock Hugging Face container speaks {STOCK_CONTRACT!r}; "
            "set deploy.handler: os-rerank (or auto) to package os-rerank's handler, which speaks it"
        ]
    return []
