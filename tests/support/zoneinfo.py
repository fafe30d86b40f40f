"""Time-zone files that make a real Go program (Alertmanager) see a chosen local time-of-week now.

Go programs read their clock from the kernel, so no fake clock reaches Alertmanager. What can be
changed is the zone: Go's ``time.LoadLocation`` looks in the directory named by ``$ZONEINFO`` first.
A TZif file there with one fixed UTC offset, chosen as (wanted local time - real UTC now), makes
``now`` in that zone read as, say, Friday 16:59, while the Alertmanager config (the zone name, the
weekdays, the hours) stays exactly as committed.
"""

from __future__ import annotations

import datetime as dt
import struct
from pathlib import Path

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def tzif(offset_seconds: int, abbreviation: str = "TEST") -> bytes:
    """A version-1 TZif file: no transitions, one local time type at ``offset_seconds`` east of UTC."""
    chars = abbreviation.encode() + b"\0"
    header = b"TZif" + b"\0" + b"\0" * 15
    # counts: isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt
    counts = struct.pack(">6l", 0, 0, 0, 0, 1, len(chars))
    ttinfo = struct.pack(">lBB", offset_seconds, 0, 0)
    return header + counts + ttinfo + chars


def offset_for(weekday: str, clock: str, now: dt.datetime | None = None) -> int:
    """Seconds east of UTC at which the real ``now`` reads as ``weekday`` at ``clock`` ("HH:MM:SS")."""
    now = now or dt.datetime.now(dt.UTC)
    naive_now = now.astimezone(dt.UTC).replace(tzinfo=None)
    hour, minute, second = (int(part) for part in clock.split(":"))
    wanted_day = naive_now.date() + dt.timedelta(days=WEEKDAYS.index(weekday) - naive_now.weekday())
    wanted = dt.datetime.combine(wanted_day, dt.time(hour, minute, second))
    return round((wanted - naive_now).total_seconds())


def write_zone(directory: Path, zone: str, offset_seconds: int) -> Path:
    """Write ``directory/zone`` (e.g. ``Europe/Berlin``); point ``$ZONEINFO`` at ``directory``."""
    path = directory / zone
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tzif(offset_seconds))
    return path
