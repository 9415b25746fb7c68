# Redis and Prometheus for the compose test, from Debian packages on any Debian-based image
# (the Docker tests use the gateway's base image), where the official images cannot be pulled.
# docker-compose.yml sets the user, entrypoint and command of both services, so this one image
# stands in for REDIS_IMAGE and PROMETHEUS_IMAGE alike: /bin/prometheus and /prometheus owned
# by nobody as in prom/prometheus, redis-server and redis-cli on the PATH as in redis:7.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
RUN set -eu; \
    apt-get update -q; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends redis-server prometheus; \
    rm -rf /var/lib/apt/lists/*; \
    test -x /bin/prometheus; \
    mkdir -p /prometheus; \
    chown nobody:nogroup /prometheus
WORKDIR /prometheus
