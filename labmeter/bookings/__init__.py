"""Bookings: who declared they would use which lab or devices, when, for what, and whether the
activity was commercial.

``model`` holds a booking, ``ics`` reads iCalendar (recurrences through ``icalendar`` and
``recurring-ical-events``), ``table`` reads CSV, ``sources`` the file that lists the calendars
and feeds a site books through, ``fetch`` fetches a feed as hostile input, ``feeds`` keeps
each feed's last good copy.
Every problem names its file and line, like the inventory's.
"""

from labmeter.bookings.feeds import FeedState
from labmeter.bookings.model import Booking, BookingError, Defaults
from labmeter.bookings.sources import Bookings, check_file, load_sources, open_bookings

__all__ = [
    "Booking",
    "BookingError",
    "Bookings",
    "Defaults",
    "FeedState",
    "check_file",
    "load_sources",
    "open_bookings",
]
