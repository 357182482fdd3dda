"""RabbitMQ: the wire format of the messages, the queues both sides declare, the consumer that
delivers, acks and dead-letters, the CLI's publisher, and the store of handled ids."""
