"""The test settings with Django's real password hasher: the suite's MD5 hasher would make the
login benchmark measure almost nothing of what a production login costs."""

from django.conf import global_settings

from config.test_settings import *  # noqa: F403

PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS
