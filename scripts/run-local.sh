#!/usr/bin/env bash
# `make run`: a local RabbitMQ, a local nginx-rtmp when no RTMP URL is configured, the daemon.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/start-rabbitmq.sh
configured=${AVATARCAST_OUTPUT__RTMP_URLS:-}
if [ -z "$configured" ] && [ -f .env ]; then
  configured=$(grep -E '^AVATARCAST_OUTPUT__(RTMP_URLS|RECORD_PATH)=' .env || true)
fi
if [ -z "$configured" ]; then
  scripts/start-nginx-rtmp.sh
  export AVATARCAST_OUTPUT__RTMP_URLS='["rtmp://127.0.0.1:1935/live/avatar"]'
  echo "watch it: ffplay rtmp://127.0.0.1:1935/live/avatar   (or VLC / OBS media source)"
fi
exec "${VENV:-.venv}/bin/avatarcast" run
