"""The web console: a live preview of what is on air, the state, the queue, recent messages,
and buttons that publish through the same queues as every other publisher."""
