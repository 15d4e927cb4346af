"""Opening a connection: host-key trust on first use, connect timeout, bounded retries."""

from __future__ import annotations

import asyncio
import logging

import asyncssh

from kboss.errors import AuthenticationFailed, SSHError
from kboss.ssh.errmap import TRANSIENT_ERRORS, ConnectionDropped, host_key_changed, map_connect_error
from kboss.ssh.known_hosts import KnownHostsStore, fingerprint
from kboss.ssh.types import ConnectOptions, SshTarget

log = logging.getLogger("kboss.ssh")

_CIPHERS = [
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
]


class _TofuClient(asyncssh.SSHClient):
    """Asks the store about any host key asyncssh does not already trust.

    asyncssh calls this *before* authenticating, so a password is never sent to an impostor.
    """

    def __init__(self, store: KnownHostsStore, target: SshTarget) -> None:
        self._store = store
        self._target = target
        self.mismatch: tuple[asyncssh.SSHKey, asyncssh.SSHKey] | None = None

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        # Synchronous (asyncssh calls it so): the store's flock is held for microseconds only.
        known = self._store.check_or_record(self._target.host, self._target.port, key)
        if known is None:
            return True
        self.mismatch = (known, key)
        return False


def _client_keys(target: SshTarget) -> list[asyncssh.SSHKey] | None:
    if not target.private_key:
        return None  # None, not []: asyncssh would otherwise load ~/.ssh/id_* of this machine
    try:
        return [asyncssh.import_private_key(target.private_key, target.passphrase)]
    except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError) as exc:
        raise AuthenticationFailed(f"SSH 私钥无法读取或私钥口令错误 (private key import failed: {exc})") from None


async def _open(
    target: SshTarget,
    keys: list[asyncssh.SSHKey] | None,
    known: asyncssh.SSHKey | None,
    tofu: _TofuClient,
    options: ConnectOptions,
) -> asyncssh.SSHClientConnection:
    return await asyncssh.connect(
        target.host,
        target.port,
        username=target.username,
        password=target.password,
        client_keys=keys,
        # A known key is passed as trusted, which also makes asyncssh ask for that key type only.
        known_hosts=([known] if known else [], [], []),
        client_factory=lambda: tofu,
        # Hermetic: ignore this machine's ~/.ssh/config, ssh-agent and Kerberos.
        config=None,
        agent_path=None,
        gss_auth=False,
        gss_kex=False,
        connect_timeout=options.connect_timeout,
        keepalive_interval=options.keepalive_interval,
        keepalive_count_max=3,
        # AES-GCM first (AES-NI in hardware): asyncssh's chacha20-poly1305 builds two cipher contexts
        # per packet, which made it a third of our CPU per host in the fan-out benchmark.
        encryption_algs=_CIPHERS,
    )


async def _presented_key(target: SshTarget, options: ConnectOptions) -> asyncssh.SSHKey | None:
    """The host key the server offers when allowed any type (no authentication happens)."""
    try:
        return await asyncio.wait_for(
            asyncssh.get_server_host_key(target.host, target.port, config=None), options.connect_timeout
        )
    except (OSError, asyncssh.Error, TimeoutError):
        return None


async def _explain_failed_handshake(target: SshTarget, known: asyncssh.SSHKey, options: ConnectOptions) -> None:
    """Raise HostKeyChanged if the handshake failed because the host lost the recorded key type.

    We only ask a host for the key type we recorded; a host re-installed with another type then
    just hangs up during key exchange, which on its own looks like a network problem.
    """
    presented = await _presented_key(target, options)
    if presented is not None and presented.public_data != known.public_data:
        raise host_key_changed(target, fingerprint(known), fingerprint(presented))


async def connect_once(
    target: SshTarget, store: KnownHostsStore, options: ConnectOptions
) -> asyncssh.SSHClientConnection:
    keys = _client_keys(target)
    known = await asyncio.to_thread(store.lookup, target.host, target.port)
    tofu = _TofuClient(store, target)
    try:
        return await _open(target, keys, known, tofu, options)
    except asyncssh.HostKeyNotVerifiable:
        if tofu.mismatch is None:
            raise SSHError(f"SSH 主机密钥校验失败: {target.host}:{target.port}") from None
        recorded, presented = tofu.mismatch
        raise host_key_changed(target, fingerprint(recorded), fingerprint(presented)) from None
    except Exception as exc:  # every failure is translated; CancelledError is no Exception and passes
        error = map_connect_error(exc, target, options.connect_timeout)
    if known is not None and isinstance(error, ConnectionDropped):
        # KeyExchangeFailed lands here too (asyncssh reports it as a disconnect).
        await _explain_failed_handshake(target, known, options)
    raise error


async def connect_with_retries(
    target: SshTarget, store: KnownHostsStore, options: ConnectOptions
) -> asyncssh.SSHClientConnection:
    attempt = 1
    while True:
        log.info("SSH connect %s attempt %d/%d", target.address, attempt, options.attempts)
        try:
            return await connect_once(target, store, options)
        except TRANSIENT_ERRORS as exc:
            if attempt >= options.attempts:
                raise
            delay = options.backoff(attempt)
            log.warning("SSH connect %s failed (%s), retrying in %.1fs", target.address, exc.message, delay)
            await asyncio.sleep(delay)
            attempt += 1
