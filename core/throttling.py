"""Login throttles with keys of their own; every other endpoint uses DRF's ScopedRateThrottle."""

from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView


class LoginIPThrottle(SimpleRateThrottle):
    """Per client address, as seen through TRUSTED_PROXIES (REST_FRAMEWORK["NUM_PROXIES"])."""

    scope = "login_ip"

    def get_cache_key(self, request: Request, view: APIView) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginUsernameThrottle(SimpleRateThrottle):
    """Guessing one account's password from many addresses is throttled too."""

    scope = "login_user"

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        data = request.data if isinstance(request.data, dict) else {}
        username = str(data.get("username", "")).strip().lower()[:150]
        if not username:
            return None
        return self.cache_format % {"scope": self.scope, "ident": username}
