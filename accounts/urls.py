from django.urls import path

from accounts import apis

urlpatterns = [
    path("login", apis.LoginApi.as_view(), name="auth-login"),
    path("refresh", apis.RefreshApi.as_view(), name="auth-refresh"),
    path("me", apis.MeApi.as_view(), name="auth-me"),
]
