import pytest
from django.test import Client, override_settings
from rest_framework.test import APIClient

from core import errors
from core.tests.urls import errors_all

pytestmark = [pytest.mark.django_db, pytest.mark.urls("core.tests.urls")]

EXPECTED = {
    # class: (http status, code, zh message)
    errors.NotAuthenticated: (401, 1001, "未登录"),
    errors.TokenInvalid: (401, 1001, "Token无效"),
    errors.TokenExpired: (401, 1001, "登录已过期,请重新登录"),
    errors.QuotaNotMember: (403, 1002, "请先购买会员"),
    errors.QuotaInsufficient: (403, 1003, "配额不足,请续费"),
    errors.QuotaUserNotFound: (404, 1004, "用户不存在"),
    errors.LoginFailed: (400, 2001, "用户名或密码错误"),
    errors.InvalidTaskType: (400, 4001, "无效的任务类型"),
    errors.InvalidParams: (400, 4002, "参数错误"),
    errors.MethodNotAllowed: (405, 4002, "不支持该请求方法"),
    errors.UnsupportedMediaType: (415, 4002, "不支持的请求格式"),
    errors.PayloadTooLarge: (413, 4002, "请求体过大"),
    errors.Forbidden: (403, 4003, "无权限"),
    errors.MembershipRequired: (403, 4003, "请先开通会员"),
    errors.TaskForbidden: (403, 4003, "无权访问该任务"),
    errors.NotFound: (404, 4004, "资源不存在"),
    errors.TaskNotFound: (404, 4004, "任务不存在"),
    errors.InvalidTransition: (409, 4005, "任务状态不允许该操作"),
    errors.IdempotencyConflict: (409, 4009, "幂等键冲突"),
    errors.RateLimited: (429, 4029, "请求过于频繁"),
    errors.EndpointNotFound: (404, 404, "接口不存在"),
    errors.ApplicationError: (500, 9999, "服务器内部错误"),
    errors.ServerError: (500, 9999, "服务器内部错误"),
}


def test_every_error_class_has_an_expectation() -> None:
    assert set(errors_all()) == set(EXPECTED)


@pytest.mark.parametrize("error_class", list(EXPECTED), ids=lambda c: c.__name__)
def test_every_error_renders_in_the_envelope(error_class: type[errors.ApplicationError]) -> None:
    status, code, message = EXPECTED[error_class]
    response = APIClient().get(f"/api/test/raise/{error_class.__name__}")
    assert response.status_code == status
    assert response.json() == {"success": False, "error": {"code": code, "message": message}}
    english = APIClient().get(f"/api/test/raise/{error_class.__name__}", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    assert english.json()["error"]["message"] == error_class.message_en


def test_unhandled_exception_is_9999_without_internals() -> None:
    response = APIClient().get("/api/test/raise/boom")
    assert response.status_code == 500
    assert response.json() == {"success": False, "error": {"code": 9999, "message": "服务器内部错误"}}
    assert b"passwd" not in response.content and b"Traceback" not in response.content


@override_settings(DEBUG=False)
def test_unhandled_exception_outside_drf_is_9999_json() -> None:
    response = Client(raise_request_exception=False).get("/api/test/plain-boom")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == 9999
    assert b"plain view failure" not in response.content


@pytest.mark.parametrize("method", ["get", "post", "put", "delete"])
def test_unknown_api_path_is_code_404(method: str) -> None:
    response = getattr(APIClient(), method)("/api/no/such/thing")
    assert response.status_code == 404
    assert response.json() == {"success": False, "error": {"code": 404, "message": "接口不存在"}}


def test_wrong_method_is_405_in_the_envelope() -> None:
    response = APIClient().delete("/api/auth/login")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == 4002


def test_rate_limited_carries_retry_after() -> None:
    response = APIClient().get("/api/test/raise/RateLimited")
    assert response.status_code == 429
    # The class itself has no wait; the DRF throttle mapping (tested with login) sets it.
    assert response.json()["error"]["code"] == 4029


def test_health_reports_database_and_broker() -> None:
    response = Client().get("/health")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert body["checks"] == {"database": "ok", "broker": "ok", "cache": "ok"}
    assert body["timestamp"].endswith("+00:00")


def test_health_is_503_when_the_broker_is_down(settings) -> None:
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    response = Client().get("/health")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"] == "error"
    assert response.json()["checks"]["database"] == "ok"


def test_oversized_json_body_is_413_in_the_envelope(settings) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    body = '{"taskId": "' + "1" * 500 + '"}'
    response = APIClient().post(
        f"/api/webhooks/runninghub?token={settings.RUNNINGHUB_WEBHOOK_SECRET}", body, content_type="application/json"
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == 4002


def test_schema_and_docs_are_served() -> None:
    schema = Client().get("/api/schema", {"format": "json"})
    assert schema.status_code == 200
    document = schema.json()
    assert document["openapi"].startswith("3.")
    for path in ("/api/auth/login", "/api/task/create", "/api/task/list", "/api/task/{task_id}", "/api/media/upload"):
        assert path in document["paths"], path
    schemas = document["components"]["schemas"]
    login = document["paths"]["/api/auth/login"]["post"]
    assert login["operationId"] == "auth_login"
    assert list(login["requestBody"]["content"]) == ["application/json"]
    answer = login["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": "#/components/schemas/LoginOutEnvelope"}
    assert schemas["LoginOutEnvelope"]["properties"]["success"]["enum"] == [True]
    assert schemas["LoginOutEnvelope"]["properties"]["data"] == {"$ref": "#/components/schemas/LoginOut"}
    refused = login["responses"]["400"]
    assert refused["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorEnvelope"}
    assert "2001" in refused["description"] and "4002" in refused["description"]
    assert "Retry-After" in login["responses"]["429"]["headers"]
    upload = document["paths"]["/api/media/upload"]["post"]["requestBody"]["content"]
    assert list(upload) == ["multipart/form-data"]
    file_schema = schemas[upload["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[1]]["properties"]["file"]
    assert file_schema == {"type": "string", "format": "binary", "description": file_schema.get("description")}
    task = schemas["TaskOut"]["properties"]
    assert schemas[task["type"]["allOf"][0]["$ref"].rsplit("/", 1)[1]]["enum"] == ["basic_clean", "model_pose12"]
    assert "bearerAuth" in document["components"]["securitySchemes"]
    docs = Client().get("/api/docs")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()


def test_ssl_redirect_honours_the_proxy_header_and_spares_health(settings) -> None:
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = None  # TRUSTED_PROXIES=0: a client's X-Forwarded-Proto is not believed
    assert Client().get("/api/quota", HTTP_X_FORWARDED_PROTO="https").status_code == 301
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")  # TRUSTED_PROXIES > 0
    assert Client().get("/api/quota").status_code == 301
    assert Client().get("/api/quota", HTTP_X_FORWARDED_PROTO="https").status_code == 401
    assert Client().get("/health").status_code == 200
