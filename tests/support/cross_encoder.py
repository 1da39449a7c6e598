"""Tiny random cross-encoders built here (no network) and the unbatched scores a scorer must reproduce.

Needs torch and transformers: the test modules that use this skip first when they are missing.
"""

from __future__ import annotations

import json
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[2] / "os_rerank" / "data" / "sample_documents.jsonl"


DOCS = [json.loads(line)["passage_text"] for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line]


QUERY = "What is the capital of the United States?"


CORPUS = DOCS + [QUERY, "대한민국의 수도는 서울이다", "भारत की राजधानी नई दिल्ली है", 'quotes " \\ and tabs']


def build_tiny_cross_encoder(directory: Path, num_labels: int) -> Path:
    """A 2-layer random BERT sequence classifier with a WordPiece vocab built from CORPUS, saved to `directory`."""
    import torch
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    words = sorted({w for text in CORPUS for w in text.lower().split()})
    chars = sorted({c for text in CORPUS for c in text.lower() if not c.isspace()})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *(f"##{c}" for c in chars), *words]
    directory.mkdir(parents=True, exist_ok=True)
    vocab_file = directory / "vocab.txt"
    vocab_file.write_text("\n".join(dict.fromkeys(vocab)) + "\n", encoding="utf-8")
    # tokenizer_object=: BertTokenizerFast(vocab_file=...) silently builds a 5-token vocab in transformers 5.
    wordpiece = BertWordPieceTokenizer(str(vocab_file), lowercase=True)
    tokenizer = BertTokenizerFast(tokenizer_object=wordpiece._tokenizer, unk_token="[UNK]", sep_token="[SEP]",
                                  pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]", model_max_length=512)
    torch.manual_seed(num_labels)
    config = BertConfig(vocab_size=len(dict.fromkeys(vocab)), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, num_labels=num_labels, max_position_embeddings=128)
    BertForSequenceClassification(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def reference_scores(model_dir: Path, pairs: list[tuple[str, str]], max_length: int) -> list[float]:
    """One pair at a time, no padding: what the batched scorer must reproduce."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, local_files_only=True).eval()
    out = []
    with torch.inference_mode():
        for q, d in pairs:
            logits = model(**tok(q, d, truncation="longest_first", max_length=max_length, return_tensors="pt")).logits
            out.append(float(torch.sigmoid(logits[0, 0]) if logits.shape[1] == 1 else torch.softmax(logits, -1)[0, 1]))
    return out


PAIRS = [(QUERY, d) for d in DOCS] + [("한국의 수도", "대한민국의 수도는 서울이다"), ("q", 'quotes " \\ and tabs\t')]
