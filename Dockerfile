# credwarden operator image.
#
#   docker build -t credwarden:dev .
#
# Two stages on the same pinned base, so the virtualenv built in the first runs unchanged
# in the second. The final stage holds the base image, /opt/venv and nothing else: no
# compiler, no pip cache, no build tools, no source tree. It runs as UID/GID 65532 and
# writes nothing outside /tmp, so it runs with readOnlyRootFilesystem (the Deployment
# mounts an emptyDir at /tmp).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
# A throwaway venv for the build tools, pinned; --no-build-isolation below uses them
# instead of whatever setuptools the index serves on the day.
RUN python -m venv /opt/build \
    && /opt/build/bin/pip install --no-cache-dir setuptools==84.2.1 wheel==0.48.0
# The runtime venv has no pip of its own: the build venv's pip installs into it.
# Dependencies first, from the lock only (exact versions, every file's sha256, wheels
# only), so this layer is cached until requirements.lock changes.
COPY requirements.lock ./
RUN python -m venv --without-pip /opt/venv \
    && /opt/build/bin/pip --python /opt/venv/bin/python install --no-cache-dir \
        --require-hashes --only-binary=:all: --no-deps -r requirements.lock
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN /opt/build/bin/pip wheel --no-cache-dir --no-deps --no-build-isolation \
        --wheel-dir /src/dist . \
    && /opt/build/bin/pip --python /opt/venv/bin/python install --no-cache-dir \
        --no-deps --no-index /src/dist/credwarden-*.whl \
    && /opt/venv/bin/credwarden version

FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="credwarden" \
      org.opencontainers.image.description="Kubernetes operator that enforces the lifecycle of credentials: ServiceAccounts, their tokens and Secrets." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="credwarden" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11.14-slim-bookworm"
# PYTHONDONTWRITEBYTECODE: the root filesystem is read-only; the .pyc files were
# compiled at install time in the build stage. HOME=/tmp: the only writable place.
ENV PATH=/opt/venv/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
COPY --from=build /opt/venv /opt/venv
USER 65532:65532
WORKDIR /tmp
# 9402: Prometheus /metrics; 8080: /healthz for the liveness and readiness probes.
EXPOSE 9402 8080
ENTRYPOINT ["credwarden"]
CMD ["run"]
