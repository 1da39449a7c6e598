"""The local SageMaker-compatible endpoint (`os-rerank serve`). Imports `os_rerank.contracts` only."""
