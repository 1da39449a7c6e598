"""os-rerank: OpenSearch + a SageMaker cross-encoder = search reranking, set up and proven in one command."""

__version__ = "0.1.0"
