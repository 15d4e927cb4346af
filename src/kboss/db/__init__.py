"""The database adapter: SQLAlchemy models, the engine and sessions, Alembic migrations, commit notifications,
and the compare-and-set helper every conditional write goes through (`cas`).

May import only the core modules.
"""
