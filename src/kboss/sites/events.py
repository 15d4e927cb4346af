"""Server-sent events from a site agent's streamed provisioning step: output lines, then one `result`."""

from __future__ import annotations

import json
from typing import Any

import httpx

from kboss.errors import UpstreamError
from kboss.sites.protocol import OnLine


async def read_events(response: httpx.Response, on_line: OnLine) -> dict[str, Any]:
    """Relay each `line` event to `on_line`; the `result` event's payload is the answer."""
    event, data = "", []
    async for raw in response.aiter_lines():
        if raw.startswith(":"):
            continue  # keep-alive
        if raw.startswith("event:"):
            event = raw[6:].strip()
        elif raw.startswith("data:"):
            data.append(raw[5:].removeprefix(" "))
        elif raw == "" and event:
            try:
                payload = json.loads("\n".join(data))
            except ValueError:
                raise UpstreamError(f"站点服务发来的 {event} 事件不是 JSON") from None
            if event == "result":
                return dict(payload)
            if event == "line":
                on_line(str(payload.get("line", "")))
            event, data = "", []
    raise UpstreamError("站点服务的事件流在给出结果之前中断")
