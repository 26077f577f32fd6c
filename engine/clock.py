"""The engine's one source of 'now'. Tests move time by replacing `source`; the demo back-dates its history
with `as_of`; nothing else reads the wall clock."""
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta


def source() -> datetime:
    """The wall clock (tests replace this)."""
    return datetime.now(UTC)


_offset = timedelta(0)


def now() -> datetime:
    """The current instant, timezone-aware UTC."""
    return source() + _offset


@contextmanager
def as_of(instant: datetime):
    """Run engine calls as if it were `instant` (one process, one thread: the demo loader)."""
    global _offset
    saved, _offset = _offset, instant - source()
    try:
        yield
    finally:
        _offset = saved
