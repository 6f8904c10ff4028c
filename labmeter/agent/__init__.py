"""The edge agent: sources observe a device, the meter adds up seconds, the publisher sends."""
