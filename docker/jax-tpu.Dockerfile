# signpipe-jax-tpu: the locked environment plus jax's TPU plugin, for training steps that a preset
# sends to Cloud TPU (accelerator types TPU_*). Everything but the plugin comes from uv.lock, so a
# step runs the same code and library versions as the tests.
#
#   signpipe images build --registry REGION-docker.pkg.dev/PROJECT/REPO --family jax-tpu
#
# Base image: Python 3.11.13 on Debian 12, an exact version tag (see cpu.Dockerfile for why tags
# rather than digests). Debian 12's glibc 2.36 satisfies libtpu's manylinux_2_31 wheels.

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

RUN pip install --no-cache-dir uv==0.13.8

WORKDIR /src

COPY pyproject.toml uv.lock README.md ./
# Without libclang and tensorflow/include, unused (see cpu.Dockerfile).
RUN uv sync --frozen --no-dev --no-install-project --no-install-package libclang \
    && rm -rf /opt/venv/lib/python3.11/site-packages/tensorflow/include

COPY signpipe ./signpipe
COPY components ./components
COPY pipelines ./pipelines
RUN uv sync --frozen --no-dev --no-editable --no-install-package libclang

# The TPU extra of the locked jax version adds libtpu (from PyPI) and requests. Every package the
# lock already pins is held at its locked version by exporting the lock as constraints, so the
# extra can add packages but never move one.
RUN uv export --frozen --no-dev --no-hashes --no-emit-project --output-file /tmp/locked-constraints.txt \
    && uv pip install --python /opt/venv/bin/python --constraints /tmp/locked-constraints.txt "jax[tpu]==0.10.2" \
    && /opt/venv/bin/python -c "import importlib.metadata as m; print('libtpu', m.version('libtpu'))" \
    && /opt/venv/bin/signpipe --version


FROM ${PYTHON_BASE} AS runtime

ARG SIGNPIPE_REVISION=unknown
LABEL org.opencontainers.image.title="signpipe-jax-tpu" \
      org.opencontainers.image.revision="${SIGNPIPE_REVISION}"

RUN groupadd --system --gid 10001 signpipe \
    && useradd --system --uid 10001 --gid signpipe --create-home --home-dir /home/signpipe \
       --shell /usr/sbin/nologin signpipe

COPY --from=builder /opt/venv /opt/venv

ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SIGNPIPE_IMAGE_FAMILY=jax-tpu \
    SIGNPIPE_REVISION="${SIGNPIPE_REVISION}"

USER signpipe:signpipe
WORKDIR /home/signpipe

HEALTHCHECK --interval=5m --timeout=60s --start-period=30s --retries=3 CMD ["signpipe", "--version"]
ENTRYPOINT ["signpipe"]
CMD ["--version"]
