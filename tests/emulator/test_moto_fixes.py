"""The emulator's own fixes (tests/harness/moto_server.py), each shown through the API it mends.

Each test states what AWS answers, with its source. A test named after a fix fails on a plain
`moto_server`; the others pin down the moto behaviour the project relies on next to it.
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError


@pytest.fixture(scope="module")
def stage(emulator):
    """A REST API with a GET on `/a/{proxy+}`, deployed to stage `v1`: `(client, api id)`."""
    gateway = emulator.boto3_client("apigateway")
    api = gateway.create_rest_api(name="moto-fix-method-settings")["id"]
    root = gateway.get_resources(restApiId=api)["items"][0]["id"]
    parent = gateway.create_resource(restApiId=api, parentId=root, pathPart="a")["id"]
    proxy = gateway.create_resource(restApiId=api, parentId=parent, pathPart="{proxy+}")["id"]
    gateway.put_method(restApiId=api, resourceId=proxy, httpMethod="GET", authorizationType="NONE")
    gateway.put_integration(restApiId=api, resourceId=proxy, httpMethod="GET", type="MOCK")
    gateway.create_deployment(restApiId=api, stageName="v1")
    return gateway, api


def test_method_settings_below_the_root_are_stored_and_echoed_under_the_escaped_path(stage):
    """GetStage keys a method's settings by `~1a~1{proxy+}/GET` (terraform-provider-aws #9738:
    get-stage answers `~1some~1api~1endpoint/POST`), the form the provider reads back."""
    gateway, api = stage
    gateway.update_stage(restApiId=api, stageName="v1", patchOperations=[
        {"op": "replace", "path": "/~1a~1{proxy+}/GET/caching/enabled", "value": "true"}])
    settings = gateway.get_stage(restApiId=api, stageName="v1")["methodSettings"]
    assert settings["~1a~1{proxy+}/GET"]["cachingEnabled"] is True


def test_an_unescaped_method_setting_path_is_refused_as_api_gateway_refuses_it(stage):
    """API Gateway: "BadRequestException: Invalid method setting path" (terraform-provider-aws #15855).
    Plain moto answers 200 and stores nothing, which the provider then reads as "empty result"."""
    gateway, api = stage
    for path in ("/a/{proxy+}/GET/caching/enabled", "/a/GET/caching/enabled"):
        with pytest.raises(ClientError) as refused:
            gateway.update_stage(restApiId=api, stageName="v1",
                                 patchOperations=[{"op": "replace", "path": path, "value": "true"}])
        assert refused.value.response["Error"]["Code"] == "BadRequestException", path
        assert "Invalid method setting path" in refused.value.response["Error"]["Message"], path
    # Stage-wide settings (`*/*`) still go through.
    gateway.update_stage(restApiId=api, stageName="v1", patchOperations=[
        {"op": "replace", "path": "/*/*/metrics/enabled", "value": "true"}])
    assert gateway.get_stage(restApiId=api, stageName="v1")["methodSettings"]["*/*"]["metricsEnabled"] is True
