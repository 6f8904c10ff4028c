"""Shifts this Python process's wall clock by ``LABMETER_CLOCK_OFFSET_S`` seconds (see
``scripts/at-clock.sh``, which puts this folder on PYTHONPATH so that every Python process a
test starts is shifted alike). time-machine moves ``time.time``, ``datetime.now`` and their
kin and keeps them ticking; monotonic clocks, and so sleeps and timeouts, stay real."""

import os

if os.environ.get("LABMETER_CLOCK_OFFSET_S"):
    import time

    import time_machine

    offset = float(os.environ["LABMETER_CLOCK_OFFSET_S"])
    time_machine.travel(time.time() + offset, tick=True).start()
    # time-machine starts ticking at the first reading, not at start(): read now, or this
    # process's clock would lag its children's by its start-up time.
    time.time()
