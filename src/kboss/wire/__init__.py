"""What travels on the wire, shared by the platform's API and the site agent: the spec's envelope and the one
mapping of domain errors to it (`errors`), JSON responses, request parameters, the spec's endpoint list
(`contract`, `contract.json`), its required parameters, and the provisioning plan both sides follow (`plan`).

May import only the core modules (`kboss.errors`, `kboss.messages`).
"""
