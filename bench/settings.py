"""The test settings with the project's own password hashers: the suite's MD5 hasher would make
the login benchmark measure almost nothing of what a production login costs."""

import importlib

from config.test_settings import *  # noqa: F403

# config.settings, as config.test_settings loaded it (before it put the MD5 hasher in).
PASSWORD_HASHERS = importlib.import_module("config.settings").PASSWORD_HASHERS
