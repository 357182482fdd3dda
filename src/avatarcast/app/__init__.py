"""The process: its command line (cli/), one channel's daemon (daemon.py: build, start in
order, close in reverse), and the worker that runs several channels and shares them with a
fleet (worker.py, worker_pages.py, lease.py: RabbitMQ leases, channels.py: the channels file).
"""
