"""Organisations, users, passwords and bearer tokens (`auth`).

May import the core modules, `kboss.db` and `kboss.common`.
"""
