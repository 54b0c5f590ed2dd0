"""Django settings of the DRF peer: no middleware, no envelope, no throttles, nothing but
authentication with simplejwt and one function view."""

import os
from datetime import timedelta

import environ

SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "rest_framework", "accounts"]
AUTH_USER_MODEL = "accounts.User"
ROOT_URLCONF = "bench.peers.drf_app"
MIDDLEWARE: list[str] = []
DATABASES = {"default": {**environ.Env.db_url_config(os.environ["DATABASE_URL"]), "CONN_MAX_AGE": 60}}
USE_TZ = True
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework_simplejwt.authentication.JWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": None,
}
SIMPLE_JWT = {"SIGNING_KEY": SECRET_KEY, "ACCESS_TOKEN_LIFETIME": timedelta(minutes=30)}
