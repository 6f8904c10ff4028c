"""Serial devices on pseudo-terminals (GRBL, Marlin, current clamp, Modbus meter, badge readers)
and networked 3D printers on loopback (PrusaLink, OctoPrint, Moonraker, Bambu Lab).

Each speaks its real protocol: a serial device on the master side of a pty whose slave is
reachable at a stable symlink, so the agent's real pyserial code opens it like
``/dev/serial/by-id/...``; a printer as an HTTP server, or through a TLS Mosquitto for Bambu,
so the agent's real client code asks it. Each runs a scripted timeline with faults and records
the ground truth it went through.
"""
