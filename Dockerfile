# syntax=docker/dockerfile:1
#
# kstream worker image.
#
#   docker build -t kstream:0.1.0 .
#   docker run --rm -e KSTREAM_BROKERS=host:9092 -p 9400:9400 kstream:0.1.0
#   docker run --rm kstream:0.1.0 worker /app/pipeline/app.py   # another pipeline (mount it)
#
# Stage 1 builds wheels for kstream and all its dependencies; stage 2 installs them offline,
# so the runtime image holds no build tools and no pip cache.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# README.md* : pyproject.toml names it as the long description; the glob keeps the build
# working (with a warning) if it is ever missing.
COPY pyproject.toml README.md* ./
COPY kstream ./kstream
RUN pip wheel --wheel-dir /wheels .


FROM ${PYTHON_IMAGE} AS runtime
ARG KSTREAM_UID=10001
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    KSTREAM_STATE_DIR=/var/lib/kstream \
    KSTREAM_METRICS_PORT=9400

LABEL org.opencontainers.image.title="kstream" \
      org.opencontainers.image.description="Kafka-native micro-batch stream processor" \
      org.opencontainers.image.licenses="Apache-2.0"

RUN groupadd --system --gid "${KSTREAM_UID}" kstream \
 && useradd --system --uid "${KSTREAM_UID}" --gid "${KSTREAM_UID}" \
        --home-dir /app --no-create-home --shell /usr/sbin/nologin kstream \
 && mkdir -p /app/examples /var/lib/kstream \
 && chown "${KSTREAM_UID}:${KSTREAM_UID}" /var/lib/kstream

# Install from the wheels only (no index): what was built is what runs.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels kstream \
 && kstream --version

COPY examples /app/examples

WORKDIR /app
USER ${KSTREAM_UID}:${KSTREAM_UID}

# RocksDB state (rebuilt from changelogs when lost, but faster to keep).
VOLUME ["/var/lib/kstream"]
# /metrics, /healthz, /readyz, /topology and the batch timeline page (/).
EXPOSE 9400

# Liveness of the batch loop (python's urllib: slim has no curl). Needs the metrics server,
# so run with --no-healthcheck if KSTREAM_METRICS_PORT=0.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % (os.environ.get('KSTREAM_METRICS_PORT') or '9400'), timeout=4)"]

ENTRYPOINT ["kstream"]
CMD ["worker", "/app/examples/wordcount.py"]
