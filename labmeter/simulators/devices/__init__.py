"""Serial devices on pseudo-terminals (GRBL, Marlin, current clamp, Modbus meter, badge readers).

Each speaks its real protocol on the master side of a pty whose slave is reachable at a
stable symlink, so the agent's real pyserial code opens it like ``/dev/serial/by-id/...``.
Each runs a scripted timeline with faults and records the ground truth it went through.
"""
