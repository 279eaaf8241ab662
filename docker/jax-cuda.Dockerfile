# signpipe-jax-cuda: the locked environment plus jax's CUDA 12 plugin, for training steps that a
# preset sends to NVIDIA GPUs (accelerator types NVIDIA_*).
#
#   signpipe images build --registry REGION-docker.pkg.dev/PROJECT/REPO --family jax-cuda
#
# The runtime stage starts from NVIDIA's CUDA image so the container gets what GPU hosts expect
# of it: the NVIDIA_* variables the container toolkit reads, the forward-compatibility libraries,
# and LD_LIBRARY_PATH covering /usr/local/nvidia, where Vertex AI/GKE mount the host driver. It
# is the `base` flavour (CUDA runtime core only): cuBLAS, cuDNN, NCCL and the rest come as the
# exact wheels jax[cuda12] pins, so the larger `runtime`/`cudnn` flavours would only add a second,
# unused copy of those libraries. Tag 12.9.1 matches the CUDA 12.9 wheels jax 0.10.2 resolves to.
#
# That image has no Python 3.11 (Ubuntu 24.04 ships 3.12), and the lock is tested on 3.11, so the
# builder installs CPython 3.11.13 under /opt/python with uv (a relocatable standalone build) and
# the runtime stage copies it next to the environment. Exact version tags for both bases; see
# cpu.Dockerfile for why tags rather than digests.

# The base images are build arguments whose defaults are the pinned public bases, so a build
# elsewhere can substitute a stand-in with the same layout (docker/images-check.sh builds on a
# local Debian 12 base this way: --build-arg PYTHON_BASE=...).
ARG PYTHON_BASE=python:3.11.13-slim-bookworm
ARG CUDA_BASE=nvidia/cuda:12.9.1-base-ubuntu24.04

FROM ${PYTHON_BASE} AS builder

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_INSTALL_DIR=/opt/python \
    UV_PYTHON_PREFERENCE=only-managed \
    UV_PYTHON_DOWNLOADS=manual \
    UV_PYTHON=3.11.13 \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN pip install --no-cache-dir uv==0.13.8 \
    && uv python install 3.11.13

WORKDIR /src

COPY pyproject.toml uv.lock README.md ./
# Without libclang and tensorflow/include, unused (see cpu.Dockerfile).
RUN uv sync --frozen --no-dev --no-install-project --no-install-package libclang \
    && rm -rf /opt/venv/lib/python3.11/site-packages/tensorflow/include

COPY signpipe ./signpipe
COPY components ./components
COPY pipelines ./pipelines
RUN uv sync --frozen --no-dev --no-editable --no-install-package libclang

# The cuda12 extra of the locked jax version adds the CUDA plugin and NVIDIA's library wheels;
# the lock, exported as constraints, keeps every package it pins at its locked version.
RUN uv export --frozen --no-dev --no-hashes --no-emit-project --output-file /tmp/locked-constraints.txt \
    && uv pip install --python /opt/venv/bin/python --constraints /tmp/locked-constraints.txt "jax[cuda12]==0.10.2" \
    && /opt/venv/bin/python -c "import importlib.metadata as m; print('jax-cuda12-plugin', m.version('jax-cuda12-plugin'))" \
    && /opt/venv/bin/signpipe --version


FROM ${CUDA_BASE} AS runtime

ARG SIGNPIPE_REVISION=unknown
LABEL org.opencontainers.image.title="signpipe-jax-cuda" \
      org.opencontainers.image.revision="${SIGNPIPE_REVISION}"

RUN apt-get update \
    && apt-get install --yes --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 signpipe \
    && useradd --system --uid 10001 --gid signpipe --create-home --home-dir /home/signpipe \
       --shell /usr/sbin/nologin signpipe

COPY --from=builder /opt/python /opt/python
COPY --from=builder /opt/venv /opt/venv

ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SIGNPIPE_IMAGE_FAMILY=jax-cuda \
    SIGNPIPE_REVISION="${SIGNPIPE_REVISION}"

USER signpipe:signpipe
WORKDIR /home/signpipe

HEALTHCHECK --interval=5m --timeout=60s --start-period=30s --retries=3 CMD ["signpipe", "--version"]
ENTRYPOINT ["signpipe"]
CMD ["--version"]
