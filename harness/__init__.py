"""What the tests and the benchmarks share, from a source checkout: starting RabbitMQ and
nginx-rtmp (`services`), and running the daemon as a process, publishing to it and reading
what it sent (`daemon`). Nothing installed imports it."""
