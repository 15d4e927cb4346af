"""The audit trail: who did what to which record, when, from where, and how it ended.

`trail` records one event in its own short transaction (never the caller's, never raising into it) and holds the
action names and the per-request note the API fills in; `reads` lists events for an org's admin; `retention`
deletes events past `Settings.audit_retention_days`. Rows hold names and ids, never a submitted value or a secret.

May import the core, `db` and `common` only, so that every domain package and the API can record.
"""
