"""Organisations, users and passwords (`auth`); logging in and changing one's password (`login`); login
throttling per account and client address (`throttle`); revocable tokens and their per-process check cache
(`sessions`); what an administrator changes on a user, each change revoking the user's tokens (`users`).

May import the core modules, `kboss.db` and `kboss.common`.
"""
