"""kboss.ssh — the SSH adapter: connect (trust on first use), run, stream, upload, fan out.

    store = KnownHostsStore(settings.data_dir / "known_hosts")
    async with connect(target, known_hosts=store, options=ConnectOptions.from_settings(settings)) as c:
        facts = await c.run(["cat", "/etc/os-release"], sudo=False, check=True)

Every value interpolated into a remote shell string goes through `quote`; argv lists are quoted for you.
Errors are kboss.errors SSH errors (plus `ConnectionDropped`); secrets never appear in their text.
"""

import warnings

with warnings.catch_warnings():
    # asyncssh names DSA key classes at import, which cryptography >= 51 reports as deprecated; kboss never offers
    # or accepts DSA keys, so the warning says nothing about us (and would fail every run with warnings as errors).
    warnings.filterwarnings("ignore", message="DSA is deprecated", category=UserWarning)
    import asyncssh  # noqa: F401

from kboss.redaction import MASK, Redactor
from kboss.ssh.client import Connecting, SshClient, connect
from kboss.ssh.commands import Command
from kboss.ssh.errmap import TRANSIENT_ERRORS, ConnectionDropped
from kboss.ssh.fanout import HostOutcome, run_many
from kboss.ssh.known_hosts import KnownHostsStore, fingerprint
from kboss.ssh.stream import CommandStream
from kboss.ssh.types import CommandResult, ConnectOptions, SshTarget, quote

__all__ = [
    "MASK",
    "TRANSIENT_ERRORS",
    "Command",
    "CommandResult",
    "CommandStream",
    "ConnectOptions",
    "Connecting",
    "ConnectionDropped",
    "HostOutcome",
    "KnownHostsStore",
    "Redactor",
    "SshClient",
    "SshTarget",
    "connect",
    "fingerprint",
    "quote",
    "run_many",
]
