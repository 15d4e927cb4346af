"""The `kboss` command (`main`): serve, migrate, users, the demo data (`demo`) and operations (`ops`).

May import anything; nothing imports it.
"""
