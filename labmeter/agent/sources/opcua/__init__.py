"""OPC UA servers: OPC 40001-1 machines and PLC tags."""
