# Hanoi IOC services (ingest, processing, ops_api, webhooks, simulators, the hanoi-ioc CLI): one image,
# the command picks the service (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# .dockerignore admits only what `pip install .` needs.
COPY . .
RUN pip install . \
    && rm -rf /src/build \
    && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin hanoi

WORKDIR /
USER hanoi
CMD ["hanoi-ioc", "--help"]
