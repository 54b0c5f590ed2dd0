"""The WSGI application gunicorn serves, warmed before its first request.

Without the warm-up, the first request a worker serves also imports the URL conf with every app's
views and serializers, PyJWT and its algorithms (simplejwt loads its token backend on first use),
and Celery's result backend and broker transport: about 160 ms of CPU on this project, paid again
each time gunicorn replaces a worker (`max_requests`), by whichever requests arrive first. None of
it touches the network, so a worker still starts when the database or the broker is down."""

import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

# Loaded once Django is set up (they read the settings as they load).
from rest_framework_simplejwt.state import token_backend  # noqa: E402

from config.celery import app as celery_app  # noqa: E402

get_resolver().url_patterns  # noqa: B018 (imports every routed view)
token_backend.get_leeway()
celery_app.backend  # noqa: B018
celery_app.connection_for_write().transport  # noqa: B018 (the transport class; nothing connects)
