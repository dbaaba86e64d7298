"""The bus: wire format, topics, broker URLs and the brokers themselves (amqtt, Mosquitto)."""
