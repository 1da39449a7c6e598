"""`os-rerank local`: a real OpenSearch node with ML Commons and neural-search on this machine, without Docker.

`maven` fetches and checks the artifacts, `distribution` says what a node of a version is made of (pure), and
`node` builds, starts, inspects and stops it.
"""
