# One image for every process: web (the default command), the two Celery worker pools and beat
# (compose.yaml gives each its command). Slim base, dependencies in a venv built in a first stage,
# runs as an unprivileged user.
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# A compiler for the one runtime package published without wheels (crcmod, under the COS SDK);
# it stays in this stage.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
COPY requirements.txt requirements.lock /tmp/
# Runtime packages only, at the versions of the lock file.
RUN /opt/venv/bin/pip install -r /tmp/requirements.txt -c /tmp/requirements.lock

FROM python:3.11-slim-bookworm
# One BLAS thread per process: the cpu pool already runs one image job per core, and numpy's
# OpenBLAS threads busy-wait between calls (about 0.5 s of CPU per basic_clean job, BENCHMARKS.md).
ENV PATH=/opt/venv/bin:$PATH \
    OPENBLAS_NUM_THREADS=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_VAR_DIR=/app/var \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus
RUN groupadd --system --gid 10001 app && useradd --system --uid 10001 --gid app --home-dir /app app
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=app:app . .
# The admin's static files, hashed and compressed, served by the web process itself (WhiteNoise).
# Settings load here without a deployment's environment: the embedded default needs none.
RUN python manage.py collectstatic --noinput --verbosity 0 \
    && mkdir -p /app/var/media /tmp/prometheus \
    && chown -R app:app /app/var /tmp/prometheus
USER app
EXPOSE 8000
# gunicorn reads ./gunicorn.conf.py (workers and threads from the CPU count, timeouts, JSON access lines).
CMD ["gunicorn", "config.wsgi"]
