"""The database adapter: SQLAlchemy models, the engine and sessions, Alembic migrations, commit notifications.

May import only the core modules.
"""
