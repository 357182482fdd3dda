"""avatarcast: a talking avatar on a live RTMP stream, fed by RabbitMQ."""

__version__ = "0.1.0"
