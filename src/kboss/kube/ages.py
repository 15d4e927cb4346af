"""Ages the way kubectl prints them.

A port of `k8s.io/apimachinery/pkg/util/duration.HumanDuration` and of kubectl's
`translateTimestampSince`, so that `pod_age`/`node_age` read exactly like `kubectl get -o wide`:
`45s`, `5m30s`, `17m`, `3h5m`, `17h`, `5d18h`, `70d`, `2y10d`, `9y`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_SECOND_US = 1_000_000
_MINUTE_US = 60 * _SECOND_US
_HOUR_US = 60 * _MINUTE_US


def human_duration(delta: timedelta) -> str:
    """~2-3 significant figures of a duration, as `duration.HumanDuration` gives them."""
    micros = delta // timedelta(microseconds=1)
    # Go's int(d.Seconds()) truncates toward zero; Python's // floors, so handle the sign by hand.
    seconds = micros // _SECOND_US if micros >= 0 else -((-micros) // _SECOND_US)
    if seconds < -1:
        # More than a second in the future: clocks disagree beyond what kubectl tolerates.
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = micros // _MINUTE_US
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 180:
        return f"{minutes}m"
    return _hours_and_more(micros // _HOUR_US, minutes)


def _hours_and_more(hours: int, minutes: int) -> str:
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        rest = hours % 24
        return f"{days}d" if rest == 0 else f"{days}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{days}d"
    years = days // 365
    if hours < 24 * 365 * 8:
        rest = days % 365
        return f"{years}y" if rest == 0 else f"{years}y{rest}d"
    return f"{years}y"


def age(timestamp: datetime | None, now: datetime) -> str:
    """kubectl's `translateTimestampSince`: `<unknown>` for a missing timestamp."""
    if timestamp is None:
        return "<unknown>"
    return human_duration(_aware(now) - _aware(timestamp))


def _aware(value: datetime) -> datetime:
    # The API always speaks UTC; a naive datetime here can only mean UTC too.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
