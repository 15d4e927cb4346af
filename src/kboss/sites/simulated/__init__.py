"""The simulated site: a center whose machines and cluster live in the platform's database, for demos and fast
tests (`site`), with its cluster state (`state`) and drain (`drain`).

May import what `kboss.sites` may.
"""
