#!/usr/bin/env bash
# Starts the local RabbitMQ unless something already listens on 5672.
set -euo pipefail
if (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then
  exit 0
fi
echo "starting RabbitMQ"
rabbitmq-server -detached
until rabbitmqctl -q await_startup --timeout 30 2>/dev/null; do sleep 0.5; done
