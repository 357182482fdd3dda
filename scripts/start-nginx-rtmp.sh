#!/usr/bin/env bash
# Starts a local nginx-rtmp on 127.0.0.1:${RTMP_PORT:-1935} (live application "live"),
# unless something already listens there. Its files live under var/nginx.
set -euo pipefail
cd "$(dirname "$0")/.."
port=${RTMP_PORT:-1935}
if (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null; then
  exit 0
fi
prefix="$PWD/var/nginx"
mkdir -p "$prefix"
sed -e "s#@PREFIX@#$prefix#g" -e "s#@LISTEN@#127.0.0.1:$port#g" deploy/nginx-rtmp.conf.in > "$prefix/nginx.conf"
nohup nginx -p "$prefix" -c "$prefix/nginx.conf" >"$prefix/nginx.out" 2>&1 &
for _ in $(seq 50); do
  (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && { echo "nginx-rtmp on rtmp://127.0.0.1:$port/live"; exit 0; }
  sleep 0.1
done
echo "nginx-rtmp did not start; see $prefix/error.log" >&2
exit 1
