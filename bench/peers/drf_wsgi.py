"""WSGI entry of the DRF peer (its own settings, whatever the environment names)."""

import os

os.environ["DJANGO_SETTINGS_MODULE"] = "bench.peers.drf_settings"

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()
