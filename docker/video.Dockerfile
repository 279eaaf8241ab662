# signpipe-video: MediaPipe 0.10.14 with its legacy holistic models, for the step that turns videos
# into landmark files (`signpipe extract`, whose MediaPipe worker finds this environment through
# SIGNPIPE_VIDEO_PYTHON). mediapipe 0.10.x needs protobuf < 5 and the main lock's tensorflow-cpu 2.21
# needs protobuf >= 5, so this image does not install uv.lock: it installs the video environment's
# own lock, video/requirements.txt (hash-pinned; compiled from video/requirements.in with the
# overrides in video/overrides.txt), the pins `make video-env` installs for the tests. It has
# no TensorFlow and no jax.
#
#   signpipe images build --registry REGION-docker.pkg.dev/PROJECT/REPO --family video
#
# Base image: Python 3.11.13 on Debian 12, the Python that video/requirements.txt is compiled for;
# exact version tag, see cpu.Dockerfile for why tags rather than digests. mediapipe's wheel bundles
# its EGL/GLES libraries and opencv-python-headless needs no X11, so no system packages are added.

# The base images are build arguments whose defaults are the pinned public bases, so a build
# elsewhere can substitute a stand-in with the same layout (docker/images-check.sh builds on a
# local Debian 12 base this way: --build-arg PYTHON_BASE=...).
ARG PYTHON_BASE=python:3.11.13-slim-bookworm

FROM ${PYTHON_BASE} AS builder

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN pip install --no-cache-dir uv==0.13.8 \
    && uv venv --python /usr/local/bin/python3.11 /opt/venv

WORKDIR /src

# The environment exactly as locked: `pip sync` installs the listed versions and removes anything
# else, and --require-hashes refuses a file that does not pin every package by hash.
COPY video/requirements.txt ./video/requirements.txt
RUN uv pip sync --python /opt/venv/bin/python --require-hashes video/requirements.txt

# The project without its dependencies: they are the main lock's (TensorFlow among them); this
# image's libraries are the ones synced above.
COPY pyproject.toml README.md ./
COPY signpipe ./signpipe
COPY components ./components
COPY pipelines ./pipelines
RUN uv pip install --python /opt/venv/bin/python --no-deps . \
    && /opt/venv/bin/python -c "import mediapipe as mp, google.protobuf as pb; mp.solutions.holistic.Holistic; print('mediapipe', mp.__version__, 'protobuf', pb.__version__)" \
    && /opt/venv/bin/signpipe --version


FROM ${PYTHON_BASE} AS runtime

ARG SIGNPIPE_REVISION=unknown
LABEL org.opencontainers.image.title="signpipe-video" \
      org.opencontainers.image.revision="${SIGNPIPE_REVISION}"

RUN groupadd --system --gid 10001 signpipe \
    && useradd --system --uid 10001 --gid signpipe --create-home --home-dir /home/signpipe \
       --shell /usr/sbin/nologin signpipe

COPY --from=builder /opt/venv /opt/venv

ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SIGNPIPE_IMAGE_FAMILY=video \
    SIGNPIPE_VIDEO_PYTHON=/opt/venv/bin/python \
    SIGNPIPE_REVISION="${SIGNPIPE_REVISION}"

USER signpipe:signpipe
WORKDIR /home/signpipe

HEALTHCHECK --interval=5m --timeout=60s --start-period=30s --retries=3 CMD ["signpipe", "--version"]
ENTRYPOINT ["signpipe"]
CMD ["--version"]
