# SPDX-License-Identifier: MIT
"""Server-sent events as the proxy tests read them (stdlib only)."""
import json


def events(text):
    """The events of a whole SSE body: [{"event": NAME, "data": JSON or "[DONE]"}, ...]."""
    out = []
    for block in text.split("\n\n"):
        ev = {}
        for ln in block.splitlines():
            if ln.startswith("event:"):
                ev["event"] = ln[6:].strip()
            elif ln.startswith("data:"):
                d = ln[5:].strip()
                ev["data"] = d if d == "[DONE]" else json.loads(d)
        if ev:
            out.append(ev)
    return out
