"""What the AWS-side tests share: the execution role and moto's missing UpdateEndpoint."""

from __future__ import annotations

import json

import pytest

ROLE = "arn:aws:iam::123456789012:role/sagemaker-execution"


@pytest.fixture
def moto_update_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    """UpdateEndpoint for moto 5.2 (not implemented there): point the endpoint at the new endpoint config."""

    from moto.sagemaker.responses import SageMakerResponse

    def update_endpoint(self: SageMakerResponse) -> str:
        backend = self.sagemaker_backend
        endpoint = backend.endpoints[self._get_param("EndpointName")]
        config = backend.endpoint_configs[self._get_param("EndpointConfigName")]
        endpoint.endpoint_config_name = config.endpoint_config_name
        endpoint.production_variants = endpoint._process_production_variants(config.production_variants)
        return json.dumps({"EndpointArn": endpoint.arn})

    monkeypatch.setattr(SageMakerResponse, "update_endpoint", update_endpoint, raising=False)
