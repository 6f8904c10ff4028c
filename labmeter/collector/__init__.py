"""The collector: MQTT in, validation, batched InfluxDB writes, ack after write, dead letters."""
