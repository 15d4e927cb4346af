"""The platform's HTTP API: `compat/` (the spec's paths and envelope) and `v1/` (native REST), with the request
dependencies (`deps`) and application state (`state`). Routes are thin: parse, authorise, one service call, shape.

May import every domain package, the adapters and `kboss.wire`; never `kboss.app`, `kboss.cli` or `kboss.agent`.
"""
