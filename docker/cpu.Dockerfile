# signpipe-cpu: the project's locked environment exactly as `make test` runs it (jax on the CPU,
# TensorFlow for the TFLite conversion). Runs validate, preprocess, align, export, evaluate, gate
# and publish, and training when a preset asks for no accelerator.
#
# Build from the repository root (the build context is the checkout, .dockerignore keeps it to
# the sources and lock files):
#   signpipe images build --registry REGION-docker.pkg.dev/PROJECT/REPO --family cpu
#
# Base images are pinned to exact version tags (Python 3.11.13 on Debian 12, the minor version the
# lock is tested with): a new patch release is never picked up silently and the tag stays readable
# in review. They carry no `@sha256:` digest because these files were written without registry
# access to resolve one; a team that mirrors its base images can append the digests, which the
# static tests (tests/test_docker_static.py) accept as well.

# The base images are build arguments whose defaults are the pinned public bases, so a build
# elsewhere can substitute a stand-in with the same layout (docker/images-check.sh builds on a
# local Debian 12 base this way: --build-arg PYTHON_BASE=...).
ARG PYTHON_BASE=python:3.11.13-slim-bookworm

FROM ${PYTHON_BASE} AS builder

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The uv release the Makefile uses, so the image resolves the lock file the same way CI does.
RUN pip install --no-cache-dir uv==0.13.8

WORKDIR /src

# Dependencies first, from the lock file alone: this layer is rebuilt only when uv.lock changes.
# Two parts of TensorFlow's wheel that no step uses are left out (about 350 MB of 2.9 GB, measured
# by docker/images-check.sh): libclang, a dependency nothing imports (bindings for TensorFlow's
# build tooling), and tensorflow/include, C++ headers for compiling custom ops. Every other
# package is exactly as locked; the TFLite conversion is checked in the built image.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project --no-install-package libclang \
    && rm -rf /opt/venv/lib/python3.11/site-packages/tensorflow/include

# Then the project itself, installed as a wheel (not editable) so the runtime stage needs no /src.
COPY signpipe ./signpipe
COPY components ./components
COPY pipelines ./pipelines
RUN uv sync --frozen --no-dev --no-editable --no-install-package libclang \
    && /opt/venv/bin/signpipe --version


FROM ${PYTHON_BASE} AS runtime

ARG SIGNPIPE_REVISION=unknown
LABEL org.opencontainers.image.title="signpipe-cpu" \
      org.opencontainers.image.revision="${SIGNPIPE_REVISION}"

RUN groupadd --system --gid 10001 signpipe \
    && useradd --system --uid 10001 --gid signpipe --create-home --home-dir /home/signpipe \
       --shell /usr/sbin/nologin signpipe

COPY --from=builder /opt/venv /opt/venv

ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SIGNPIPE_IMAGE_FAMILY=cpu \
    SIGNPIPE_REVISION="${SIGNPIPE_REVISION}"

USER signpipe:signpipe
WORKDIR /home/signpipe

HEALTHCHECK --interval=5m --timeout=60s --start-period=30s --retries=3 CMD ["signpipe", "--version"]
ENTRYPOINT ["signpipe"]
CMD ["--version"]
