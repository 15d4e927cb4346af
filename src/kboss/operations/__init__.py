"""The generic engine of durable operations: states and allowed transitions (`states`), steps and their context
(`steps`), the runner of one operation, the worker that claims them, the sweeper, logs, and the service the API
calls (`service`). It knows no operation kind: those live in `kboss.clusters`.

May import the core modules, `kboss.db` and `kboss.common`.
"""
