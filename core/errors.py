"""The one error hierarchy of the product. Every API error is one of these, rendered once by
`core.exceptions.api_exception_handler` into the SPEC §2 envelope."""

from __future__ import annotations

from typing import Any, ClassVar


class ApplicationError(Exception):
    code: ClassVar[int] = 9999
    http_status: ClassVar[int] = 500
    message_zh: ClassVar[str] = "服务器内部错误"
    message_en: ClassVar[str] = "Internal server error"

    def __init__(
        self,
        message_zh: str | None = None,
        message_en: str | None = None,
        *,
        fields: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.text_zh = message_zh or self.message_zh
        self.text_en = message_en or (self.message_en if message_zh is None else self.text_zh)
        self.fields = fields
        self.headers = headers or {}
        super().__init__(self.text_en)

    def message(self, language: str) -> str:
        return self.text_en if language == "en" else self.text_zh

    def envelope(self, language: str) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message(language)}
        if self.fields:
            error["fields"] = self.fields
        return {"success": False, "error": error}


class NotAuthenticated(ApplicationError):
    code, http_status = 1001, 401
    message_zh, message_en = "未登录", "Not logged in"


class TokenInvalid(NotAuthenticated):
    message_zh, message_en = "Token无效", "Invalid token"


class TokenExpired(NotAuthenticated):
    message_zh, message_en = "登录已过期,请重新登录", "Login expired, please log in again"


class QuotaNotMember(ApplicationError):
    code, http_status = 1002, 403
    message_zh, message_en = "请先购买会员", "Please buy a membership first"


class QuotaInsufficient(ApplicationError):
    code, http_status = 1003, 403
    message_zh, message_en = "配额不足,请续费", "Not enough quota, please renew"


class QuotaUserNotFound(ApplicationError):
    code, http_status = 1004, 404
    message_zh, message_en = "用户不存在", "User not found"


class LoginFailed(ApplicationError):
    code, http_status = 2001, 400
    message_zh, message_en = "用户名或密码错误", "Wrong username or password"


class InvalidTaskType(ApplicationError):
    code, http_status = 4001, 400
    message_zh, message_en = "无效的任务类型", "Invalid task type"


class InvalidParams(ApplicationError):
    code, http_status = 4002, 400
    message_zh, message_en = "参数错误", "Invalid parameters"


class MethodNotAllowed(InvalidParams):
    http_status = 405
    message_zh, message_en = "不支持该请求方法", "Method not allowed"


class UnsupportedMediaType(InvalidParams):
    http_status = 415
    message_zh, message_en = "不支持的请求格式", "Unsupported media type"


class PayloadTooLarge(InvalidParams):
    http_status = 413
    message_zh, message_en = "请求体过大", "Request body too large"


class Forbidden(ApplicationError):
    code, http_status = 4003, 403
    message_zh, message_en = "无权限", "Permission denied"


class MembershipRequired(Forbidden):
    message_zh, message_en = "请先开通会员", "Please activate a membership first"


class TaskForbidden(Forbidden):
    message_zh, message_en = "无权访问该任务", "No access to this task"


class NotFound(ApplicationError):
    code, http_status = 4004, 404
    message_zh, message_en = "资源不存在", "Not found"


class TaskNotFound(NotFound):
    message_zh, message_en = "任务不存在", "Task not found"


class InvalidTransition(ApplicationError):
    code, http_status = 4005, 409
    message_zh, message_en = "任务状态不允许该操作", "The task's status does not allow this"


class IdempotencyConflict(ApplicationError):
    code, http_status = 4009, 409
    message_zh, message_en = "幂等键冲突", "Idempotency key conflict"


class RateLimited(ApplicationError):
    code, http_status = 4029, 429
    message_zh, message_en = "请求过于频繁", "Too many requests"


class EndpointNotFound(ApplicationError):
    code, http_status = 404, 404
    message_zh, message_en = "接口不存在", "No such endpoint"


class ServerError(ApplicationError):
    """Anything unhandled; the class default of ApplicationError, named for readability."""
