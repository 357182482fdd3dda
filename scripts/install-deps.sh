#!/usr/bin/env bash
# Installs what avatarcast needs and is missing: Debian packages (FFmpeg, nginx with its RTMP
# module, espeak-ng, RabbitMQ) and a virtual environment with the Python packages.
# Usage: scripts/install-deps.sh [runtime|dev]
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-runtime}
venv=${VENV:-.venv}

missing=()
command -v ffmpeg >/dev/null || missing+=(ffmpeg)
command -v ffprobe >/dev/null || missing+=(ffmpeg)
command -v nginx >/dev/null || missing+=(nginx)
[ -e /usr/lib/nginx/modules/ngx_rtmp_module.so ] || missing+=(libnginx-mod-rtmp)
command -v espeak-ng >/dev/null || missing+=(espeak-ng)
command -v rabbitmq-server >/dev/null || missing+=(rabbitmq-server)
command -v pgrep >/dev/null || missing+=(procps)  # the tests find FFmpeg children with it
# The scene's text (playout/scene/text.py).
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
if [ "$kind" = dev ]; then
  # The web console's test drives a real browser (Playwright with Debian's chromium).
  command -v chromium >/dev/null || missing+=(chromium)
fi
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

req=requirements.txt
[ "$kind" = dev ] && req=requirements-dev.txt
hash=$(cat requirements*.txt pyproject.toml | sha1sum | cut -c1-12)
stamp="$venv/.installed-$kind-$hash"
# The dev install holds everything the runtime needs: `make run` after `make test` installs
# nothing.
if [ "$kind" = runtime ] && [ -e "$venv/.installed-dev-$hash" ]; then
  stamp="$venv/.installed-dev-$hash"
fi
if [ ! -e "$stamp" ]; then
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  # torch first and pinned: left to the resolver, a dependency would pull the newest build
  # with gigabytes of CUDA packages.
  "$venv/bin/pip" install -q --disable-pip-version-check "torch==2.13.0"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
  "$venv/bin/pip" install -q --disable-pip-version-check --no-deps -r requirements-nodeps.txt
  "$venv/bin/pip" install -q --disable-pip-version-check --no-deps -e .
  touch "$stamp"
fi
