"""The simulated site: a center whose machines (`machines`: timed steps, faults, effects) and cluster (`state`,
`drain`) live in the platform's process and database, for demos and fast tests, behind the same protocol as a
site agent (`site`).

May import what `kboss.sites` may.
"""
