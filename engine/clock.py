"""The engine's one source of 'now'. Tests move time by patching `now`; nothing else reads the wall clock."""
from datetime import UTC, datetime


def now() -> datetime:
    """The current instant, timezone-aware UTC."""
    return datetime.now(UTC)
