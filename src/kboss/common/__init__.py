"""What every domain package shares: the request context (`Ctx`, `Principal`, roles), paging and sorting of lists,
tenant-scoped lookups and row formatting, the input models and their validation, a small TTL cache.

May import the core modules (`kboss.errors`, `kboss.crypto`, `kboss.messages`, ...) and `kboss.db`; nothing above.
"""
