"""The served OpenAPI document: valid OpenAPI 3 by openapi-spec-validator's reading too (make
typecheck runs drf-spectacular's own check), and shaped the way generated clients rely on.
core/tests/test_generated_clients.py shows that clients generated from it work."""

from typing import Any

import pytest
from openapi_spec_validator import validate
from rest_framework.test import APIClient


@pytest.fixture
def schema(api: APIClient) -> dict[str, Any]:
    answer = api.get("/api/schema", {"format": "json"})
    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("application/vnd.oai.openapi+json")
    document: dict[str, Any] = answer.json()
    return document


def test_schema_passes_openapi_spec_validator(schema: dict[str, Any]) -> None:
    validate(schema)


def test_every_success_body_is_a_named_envelope_of_an_object(schema: dict[str, Any]) -> None:
    """`{success: true, data: <Payload>}` under `<Payload>Envelope`, so that a generated client has
    one typed model per answer; every payload is an object (no viewset `list` action shown as an
    array). The one file download (the results archive) is binary and declared so."""
    components = schema["components"]["schemas"]
    checked = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if not status.startswith("2"):
                    continue
                if "application/json" not in response["content"]:
                    assert response["content"] == {
                        "application/zip": {"schema": {"type": "string", "format": "binary"}}
                    }
                    assert operation["operationId"] == "task_archive"
                    continue
                name = response["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
                envelope = components[name]
                payload = envelope["properties"]["data"]["$ref"].rsplit("/", 1)[1]
                assert name == f"{payload}Envelope", (method, path)
                assert envelope["required"] == ["success", "data"], (method, path)
                assert components[payload]["type"] == "object", (method, path)
                checked.append(operation["operationId"])
    assert {"quota_get", "task_list", "task_get", "media_upload"} <= set(checked)
