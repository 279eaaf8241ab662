#!/usr/bin/env bash
# Build the `cpu` and `video` images from docker/ for real and run them, offline, as their
# non-root user: `make images-check` (docs/images.md). No Docker engine is needed: Debian's
# buildah builds (storage driver vfs, --isolation chroot) and podman runs (runtime runc, cgroupfs).
#
# Steps:
#   1. tools: buildah, podman, runc, debootstrap (installed with apt-get when missing and root);
#   2. the base: the public base (python:3.11.13-slim-bookworm) comes from a registry this
#      machine cannot reach, so a stand-in is made once with debootstrap (Debian 12 minbase,
#      python3.11 at /usr/local/bin/python3.11 like the official image, the host's trusted CA
#      certificates) and cached, keyed by what it contains, under $SIGNPIPE_IMAGES_CACHE;
#   3. each image built with `--build-arg PYTHON_BASE=<the stand-in>` from the committed lock
#      files (no --layers: with vfs every layer is a full copy), its size printed;
#   4. each image run with no network: `signpipe --version` as uid 10001 (also its health check),
#      /opt/venv's size and largest packages; in the cpu image the pipeline's validate step through
#      the command line the compiled Vertex spec gives it (docker/step_check.py), on the real
#      asl-signs sample mounted read-only, and a TFLite export (docker/export_check.py); in the
#      video image `signpipe extract` on a short video (MediaPipe's models come inside its wheel);
#   5. the images and containers it made are removed (the cached base is kept).
# Before building, the jax-tpu and jax-cuda dependency sets are resolved for their platform (they
# cannot be built here).
#
# Environment: SIGNPIPE_IMAGES_CACHE (default /var/tmp/signpipe-images), SIGNPIPE_IMAGES_FAMILIES
# (default "cpu video"), SIGNPIPE_IMAGES_KEEP=1 keeps the built images, SIGNPIPE_SHARED_DATA (the
# folder holding asl-signs-sample; default ../shared/data beside the checkout), SIGNPIPE_IMAGES_MIN_FREE_GB
# (default 16). Exits non-zero, saying why, when something cannot run here.
set -euo pipefail

ROOT="${SIGNPIPE_CHECKOUT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
cd "$ROOT"
CACHE="${SIGNPIPE_IMAGES_CACHE:-/var/tmp/signpipe-images}"
FAMILIES="${SIGNPIPE_IMAGES_FAMILIES:-cpu video}"
MIN_FREE_GB="${SIGNPIPE_IMAGES_MIN_FREE_GB:-16}"  # measured peak: 14.5 GB
SUITE=bookworm
BASE_PACKAGES="python3,python3-venv,python3-pip,ca-certificates"
BASE_RECIPE_VERSION=1   # bump when make_base changes what goes into the base
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
STARTED=$(date +%s)

say() { echo "== images-check: $* (at $(( $(date +%s) - STARTED )) s)"; }
fail() { echo "images-check: FAILED: $*" >&2; exit 1; }
elapsed() { echo $(( $(date +%s) - $1 )); }

# --- 1. tools ------------------------------------------------------------------------------------

need_tools() {
  local missing=()
  for tool in buildah podman runc debootstrap; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    fail "missing ${missing[*]} and cannot install them here (needs root and apt-get: apt-get install buildah podman runc debootstrap)"
  fi
  say "installing ${missing[*]}"
  apt-get update -qq || fail "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    buildah podman runc debootstrap conmon netavark containernetworking-plugins uidmap debian-archive-keyring >/dev/null \
    || fail "apt-get install buildah podman runc debootstrap failed"
}

check_machine() {
  [ "$(id -u)" = 0 ] || fail "must run as root: the chroot builds and the vfs storage need it (rootless podman needs user namespaces, which this check does not use)"
  [ -x "$PYTHON" ] || fail "$PYTHON missing: run \`make setup\` first (the pipeline is compiled on the host)"
  mkdir -p "$CACHE"
  local free_gb
  free_gb=$(( $(df --output=avail -k "$CACHE" | tail -1) / 1024 / 1024 ))
  [ "$free_gb" -ge "$MIN_FREE_GB" ] \
    || fail "only ${free_gb} GB free under $CACHE, a build needs about ${MIN_FREE_GB} GB (vfs copies every layer whole); set SIGNPIPE_IMAGES_CACHE to a larger disk"
}

# Podman/buildah settings of our own (not /etc/containers): vfs storage under the cache, runc with
# cgroupfs, and default ulimits no higher than this machine's (runc refuses to raise them).
configure_containers() {
  local conf="$CACHE/conf" nofile nproc
  mkdir -p "$conf" "$CACHE/storage" /run/signpipe-images
  # podman's defaults (nofile and nproc 1048576) are above this machine's hard limits, and runc
  # fails to start a container then; nproc stays at buildah's default (32768), which runc could
  # set here where the host's own hard limit (96362) was refused.
  nofile=$(ulimit -Hn); nproc=$(ulimit -Hu)
  [ "$nofile" = unlimited ] && nofile=1048576
  [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ] && nproc=32768
  cat >"$conf/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$CACHE/storage"
runroot = "/run/signpipe-images/storage"
EOF
  cat >"$conf/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=${nproc}:${nproc}"]
log_driver = "k8s-file"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "/run/signpipe-images/libpod"
EOF
  export CONTAINERS_STORAGE_CONF="$conf/storage.conf" CONTAINERS_CONF="$conf/containers.conf"
  export BUILDAH_ISOLATION=chroot BUILDAH_LAYERS=false
}

# --- 2. the base ---------------------------------------------------------------------------------

debian_mirror() {
  local uri
  uri=$(grep -hs -E '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list /etc/apt/sources.list 2>/dev/null \
        | grep -v -- '-security' | grep -o -E 'https?://[^ ]+' | head -1 || true)
  echo "${SIGNPIPE_DEBIAN_MIRROR:-${uri:-http://deb.debian.org/debian}}"
}

local_ca_certificates() {
  find /usr/local/share/ca-certificates -type f -name '*.crt' 2>/dev/null | sort
}

base_key() {
  {
    echo "recipe=$BASE_RECIPE_VERSION suite=$SUITE packages=$BASE_PACKAGES mirror=$MIRROR"
    local cert
    for cert in $(local_ca_certificates); do sha256sum "$cert" | cut -d' ' -f1; done
  } | sha256sum | cut -c1-16
}

make_base() {
  local root="$CACHE/rootfs.tmp" tarball="$1" started
  started=$(date +%s)
  rm -rf "$root"
  say "making the base with debootstrap ($SUITE minbase from $MIRROR; once, then cached)"
  debootstrap --variant=minbase --include="$BASE_PACKAGES" "$SUITE" "$root" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
    || { tail -20 "$CACHE/debootstrap.log" >&2; fail "debootstrap failed (log: $CACHE/debootstrap.log)"; }
  # The CA certificates this machine trusts (a TLS-inspecting proxy's among them), or HTTPS
  # downloads during the build fail.
  local cert
  for cert in $(local_ca_certificates); do cp "$cert" "$root/usr/local/share/ca-certificates/"; done
  chroot "$root" update-ca-certificates >/dev/null
  # Where the official python image has its interpreter, and no PEP 668 marker (that image's
  # python is not Debian's, so its pip installs where it is told).
  ln -sf /usr/bin/python3.11 "$root/usr/local/bin/python3.11"
  ln -sf /usr/bin/python3.11 "$root/usr/local/bin/python3"
  ln -sf /usr/bin/python3.11 "$root/usr/local/bin/python"
  rm -f "$root"/usr/lib/python3*/EXTERNALLY-MANAGED
  chroot "$root" apt-get clean
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/usr/share/doc/* "$root"/usr/share/man/* \
         "$root"/usr/share/info/* "$root"/var/log/*.log "$root"/var/cache/debconf/*-old
  tar --numeric-owner -C "$root" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
  rm -rf "$root"
  say "base made in $(elapsed "$started") s: $(du -h "$tarball" | cut -f1)"
}

ensure_base() {
  MIRROR=$(debian_mirror)
  local key tarball
  key=$(base_key)
  BASE_IMAGE="localhost/signpipe-base:$key"
  tarball="$CACHE/base-$key.tar"
  # Other keys' tarballs and images are stale: remove them so the cache holds one base.
  find "$CACHE" -maxdepth 1 -name 'base-*.tar' ! -name "base-$key.tar" -delete
  podman images --format '{{.Repository}}:{{.Tag}}' | grep '^localhost/signpipe-base:' | grep -v ":$key\$" \
    | xargs -r podman rmi -f >/dev/null 2>&1 || true
  [ -f "$tarball" ] || make_base "$tarball"
  if ! podman image exists "$BASE_IMAGE"; then
    podman import --quiet \
      --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'ENV LANG=C.UTF-8' \
      --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
      --change 'CMD ["python3"]' \
      "$tarball" "$BASE_IMAGE" >/dev/null || fail "podman import of $tarball failed"
  fi
  local version
  version=$(podman run --rm --network none "$BASE_IMAGE" /usr/local/bin/python3.11 --version 2>&1) \
    || fail "cannot run a container from the base $BASE_IMAGE: $version"
  say "base $BASE_IMAGE: $version"
}

# --- 3. build ------------------------------------------------------------------------------------

# Containers and images a run leaves (an interrupted build, a failed check): vfs keeps each one
# whole, so they are removed before and after every run (the built images are kept after it with
# SIGNPIPE_IMAGES_KEEP=1). The cached base stays.
clean_leftovers() {
  buildah rm --all >/dev/null 2>&1 || true
  podman rm --all --force >/dev/null 2>&1 || true
  if [ "${1:-}" != keep ] || [ "${SIGNPIPE_IMAGES_KEEP:-0}" != 1 ]; then
    podman images --format '{{.Repository}}:{{.Tag}}' | grep '^localhost/signpipe-check/' | xargs -r podman rmi -f >/dev/null 2>&1 || true
  fi
  podman images --filter dangling=true -q | xargs -r podman rmi -f >/dev/null 2>&1 || true
}

image_name() { echo "localhost/signpipe-check/signpipe-$1:$REVISION"; }

build_image() {
  local family="$1" image started
  image=$(image_name "$family")
  started=$(date +%s)
  say "building $family from docker/$family.Dockerfile"
  # Docker's image format, as registry builds make (OCI's would drop the HEALTHCHECK).
  buildah build --isolation chroot --pull=never --force-rm --layers=false --format docker \
    --build-arg "PYTHON_BASE=$BASE_IMAGE" --build-arg "SIGNPIPE_REVISION=$REVISION" \
    --file "docker/$family.Dockerfile" --tag "$image" . >"$CACHE/build-$family.log" 2>&1 \
    || { tail -30 "$CACHE/build-$family.log" >&2; fail "building $family failed (log: $CACHE/build-$family.log)"; }
  say "built $family in $(elapsed "$started") s: $image, $(( $(podman image inspect --format '{{.Size}}' "$image") / 1000000 )) MB"
}

# --- 4. run --------------------------------------------------------------------------------------

# Each container is a full copy of its image with vfs (about 30 s for the cpu image), so the
# checks share as few containers as they can.
run_in() {  # podman run with no network, removed afterwards; no health check timer (it wants systemd)
  podman run --rm --network none --no-healthcheck "$@"
}

check_version() {
  local family="$1" image version
  image=$(image_name "$family")
  # The image as Vertex AI starts it without a command: ENTRYPOINT signpipe, CMD --version, and
  # the user the image names (checked to be the non-root one by printing its uid alongside).
  version=$(run_in "$image") || fail "$family: \`signpipe --version\` failed: $version"
  local health
  health=$(podman image inspect --format '{{json .HealthCheck.Test}}' "$image")
  [ "$health" = '["CMD","signpipe","--version"]' ] || fail "$family: health check $health, expected signpipe --version"
  say "$family: \`signpipe --version\` (also the health check): $version"
  # Then, in one more container: who runs, and what takes the room (site-packages' largest 15).
  run_in --entrypoint sh "$image" -c \
    'echo "uid $(id -u) ($(id -un)), $(python --version 2>&1), /opt/venv $(du -sm /opt/venv | cut -f1) MB"
     cd /opt/venv/lib/python3.11/site-packages && du -s -m -- * | sort -rn | head -15' >"$CACHE/contents-$family.txt" \
    || fail "$family: cannot run a shell in the image"
  local uid
  uid=$(head -1 "$CACHE/contents-$family.txt" | cut -d' ' -f2)
  [ "$uid" = 10001 ] || fail "$family: runs as uid $uid, expected the non-root signpipe user 10001"
  head -1 "$CACHE/contents-$family.txt" | sed "s/^/   $family: /"
  echo "   $family: /opt/venv/lib/python3.11/site-packages, largest 15:"
  tail -n +2 "$CACHE/contents-$family.txt" | awk '{printf "   %6d MB  %s\n", $1, $2}'
}

check_step() {
  local started out data
  started=$(date +%s)
  data="$(shared_data)/asl-signs-sample"
  out=$(mktemp -d "$CACHE/step.XXXXXX")
  "$PYTHON" docker/step_check.py --image "$(image_name cpu)" --data "$data" --out "$out" \
    || { rm -rf "$out"; fail "cpu: the validate step did not run as the compiled spec says"; }
  rm -rf "$out"
  say "cpu: validate step through the compiled spec's command line in $(elapsed "$started") s"
}

check_export() {
  local started result
  started=$(date +%s)
  # TensorFlow's converter and ai_edge_litert in the image as built (docker/export_check.py).
  result=$(run_in --interactive --entrypoint python "$(image_name cpu)" - <docker/export_check.py 2>"$CACHE/export-check.log") \
    || { tail -20 "$CACHE/export-check.log" >&2; fail "cpu: the TFLite export check failed"; }
  echo "   export: $result"
  say "cpu: TFLite conversion and scoring in $(elapsed "$started") s"
}

# The accelerator images cannot be built here (their bases and plugins are for TPU and NVIDIA
# hosts), but their dependency set can be resolved: the lock, exported as the Dockerfiles export
# it, plus the plugin extra each Dockerfile pins, for Linux x86-64 with Debian 12's glibc (2.36, the
# builder stage of both) and CPython 3.11. A conflict with the lock fails here, before any build.
resolve_accelerators() {
  local uv="${UV:-$ROOT/.tools/bin/uv}" work started family extra
  started=$(date +%s)
  [ -x "$uv" ] || uv=$(command -v uv) || fail "no uv to resolve the accelerator images' dependencies (run \`make setup\`)"
  work=$(mktemp -d "$CACHE/resolve.XXXXXX")
  "$uv" export --frozen --no-dev --no-hashes --no-emit-project --quiet --output-file "$work/locked.txt" \
    || fail "uv export of uv.lock failed"
  : >"$work/none.in"
  for family in none jax-tpu jax-cuda; do
    if [ "$family" != none ]; then
      extra=$(grep -o -E '"jax\[[a-z0-9]+\]==[0-9.]+"' "docker/$family.Dockerfile" | tr -d '"' | head -1)
      [ -n "$extra" ] || fail "docker/$family.Dockerfile pins no jax[...] extra"
      echo "$extra" >"$work/$family.in"
    fi
    "$uv" pip compile "$work/locked.txt" "$work/$family.in" --constraints "$work/locked.txt" \
      --python-platform x86_64-manylinux_2_36 --python-version 3.11.13 --no-header --no-annotate --quiet \
      --output-file "$work/$family.txt" 2>"$work/$family.log" \
      || { cat "$work/$family.log" >&2; rm -rf "$work"; fail "$family: $extra does not resolve against uv.lock"; }
    [ "$family" = none ] && continue
    echo "   $family: $extra resolves with uv.lock for x86_64-manylinux_2_36 (CPython 3.11): $(grep -c '==' "$work/$family.txt") packages," \
         "adds: $(comm -13 <(sort "$work/none.txt") <(sort "$work/$family.txt") | grep '==' | tr '\n' ' ')"
  done
  rm -rf "$work"
  say "jax-tpu, jax-cuda: dependency sets resolved in $(elapsed "$started") s (not built: no TPU/CUDA base here)"
}

check_jax_tpu() {  # opt-in (SIGNPIPE_IMAGES_FAMILIES="... jax-tpu"): no TPU here, so jax falls back to the CPU
  local result
  result=$(run_in --entrypoint python "$(image_name jax-tpu)" -c \
    'import importlib.metadata as m, jax, jax.numpy as jnp; print("jax", jax.__version__, "libtpu", m.version("libtpu"), "backend", jax.default_backend(), "sum", int(jnp.arange(4).sum()))' \
    2>"$CACHE/jax-tpu-check.log") || { tail -20 "$CACHE/jax-tpu-check.log" >&2; fail "jax-tpu: jax does not run in the image"; }
  echo "   jax-tpu: $result"
}

shared_data() {
  local candidate
  for candidate in "${SIGNPIPE_SHARED_DATA:-}" "$ROOT/../shared/data" "$ROOT/shared/data" /work/shared/data; do
    if [ -n "$candidate" ] && [ -d "$candidate/asl-signs-sample" ]; then
      (cd "$candidate" && pwd); return 0
    fi
  done
  fail "no asl-signs-sample found (set SIGNPIPE_SHARED_DATA to the folder holding it; looked beside the checkout: ../shared/data)"
}

check_extract() {
  local started work image
  started=$(date +%s)
  image=$(image_name video)
  work=$(mktemp -d "$CACHE/extract.XXXXXX")
  mkdir -p "$work/videos" "$work/out"
  # The astronaut video tests/test_video.py makes (a person in 6 of 8 frames), written with the
  # video environment's OpenCV and scikit-image on the host (`make video-env`).
  [ -x "$ROOT/.venv-video/bin/python" ] || fail "no .venv-video to write the test video: run \`make video-env\`"
  "$ROOT/.venv-video/bin/python" tests/test_video.py --write-videos "$work/videos" \
    || fail "could not write the test videos with .venv-video"
  rm -f "$work/videos/"{coffee.avi,empty.avi,truncated.mp4}
  chown -R 10001:10001 "$work/out"
  run_in --volume "$work/videos:/videos:ro" --volume "$work/out:/out" "$image" \
    extract /videos/astronaut.mp4 --out /out/corpus --layout isolated-signs >"$work/extract.log" 2>&1 \
    || { tail -30 "$work/extract.log" >&2; rm -rf "$work"; fail "video: signpipe extract failed"; }
  "$PYTHON" - "$work/out/corpus" <<'EOF' || { cat "$work/extract.log" >&2; rm -rf "$work"; fail "video: signpipe extract wrote no usable landmarks"; }
import sys
from pathlib import Path

import pandas as pd

corpus = Path(sys.argv[1])
index = pd.read_csv(corpus / "videos.csv")
assert len(index) == 1, index
row = index.iloc[0].to_dict()
files = sorted(corpus.rglob("*.parquet"))
assert len(files) == 1, files
frames = pd.read_parquet(files[0])
n_frames = frames["frame"].nunique()
assert n_frames == 8 and len(frames) == 8 * 543, (n_frames, len(frames))
pose = frames[frames["type"] == "pose"].dropna(subset=["x"])["frame"].nunique()
assert pose >= 4, f"MediaPipe found the astronaut in {pose} frames of 6"
print(f"   extract: {n_frames} frames x 543 landmarks, pose found in {pose} frames; videos.csv: {row}")
EOF
  rm -rf "$work"
  say "video: signpipe extract in $(elapsed "$started") s"
}

remove_image() {
  [ "${SIGNPIPE_IMAGES_KEEP:-0}" = 1 ] && return 0
  podman rmi -f "$(image_name "$1")" >/dev/null 2>&1 || true
}

# --- main ----------------------------------------------------------------------------------------

need_tools
check_machine
configure_containers
REVISION=$(git rev-parse --short HEAD 2>/dev/null || echo local)
trap 'clean_leftovers keep' EXIT
clean_leftovers
resolve_accelerators
ensure_base
for family in $FAMILIES; do
  case "$family" in
    cpu|video|jax-tpu) ;;
    *) fail "family $family cannot be built here (its runtime base is NVIDIA's CUDA image and its builder downloads CPython from GitHub: see docs/images.md); expected cpu, video or jax-tpu" ;;
  esac
  build_image "$family"
  check_version "$family"
  case "$family" in
    cpu) check_step; check_export ;;
    video) check_extract ;;
    jax-tpu) check_jax_tpu ;;
  esac
  remove_image "$family"
done
say "done: $FAMILIES built and checked"
