"""The one settings class. Every value comes from the environment with the prefix KBOSS_."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from kboss.crypto import KeyRing, parse_keys


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KBOSS_", extra="ignore")

    data_dir: Path = Path("./var")
    database_url: str = ""
    secret_key: str = ""
    dev_mode: bool = False
    # Credentials the site agent demands (HTTP Basic) and the platform presents to a local agent.
    site_user: str = "kboss"
    site_password: str = ""
    token_ttl_seconds: int = Field(default=12 * 3600, gt=0)
    # How long a process trusts its last database check of a token (revocations reach other processes this late).
    session_check_seconds: float = Field(default=0.5, ge=0, le=5)
    # Login throttling (docs/security.md): failures per account (username) and per client address within a window;
    # from `*_backoff_after` failures on, waits of backoff_seconds doubling per failure; `*_lockout_after` locks.
    login_window_seconds: float = Field(default=900.0, gt=0)
    login_backoff_after: int = Field(default=3, gt=0)
    login_lockout_after: int = Field(default=10, gt=0)
    login_address_backoff_after: int = Field(default=20, gt=0)
    login_address_lockout_after: int = Field(default=100, gt=0)
    login_backoff_seconds: float = Field(default=1.0, gt=0)
    login_backoff_max_seconds: float = Field(default=300.0, gt=0)
    login_lockout_seconds: float = Field(default=900.0, gt=0)
    log_level: str = "INFO"
    # How long compat endpoints that start long operations wait for them before answering.
    compat_wait_seconds: float = Field(default=600.0, ge=0)
    # How long a quote may reuse a center's component catalog read by an earlier quote (0 = never).
    quote_cache_seconds: float = Field(default=2.0, ge=0)
    # Multiplies the realistic durations simulated centers play their build steps with (≈4.5 min for a
    # cluster at 1.0); demos and tests shrink it.
    simulated_time_scale: float = Field(default=1.0, gt=0)
    # Operation workers: every `kboss serve` runs one; several processes share the work through row locks.
    worker_enabled: bool = True
    worker_id: str = ""
    worker_concurrency: int = Field(default=4, gt=0)
    worker_poll_seconds: float = Field(default=1.0, gt=0)
    worker_heartbeat_seconds: float = Field(default=5.0, gt=0)
    worker_stale_seconds: float = Field(default=30.0, gt=0)
    worker_sweep_seconds: float = Field(default=10.0, gt=0)
    # An instance change talks to its agent for a minute at most; one older than this was cut off by a crash.
    instance_stale_seconds: float = Field(default=600.0, gt=0)
    operation_log_tail_chars: int = Field(default=65536, gt=0)
    # Audit events older than this many days are deleted (hourly, by every serving process); 0 keeps them all.
    audit_retention_days: int = Field(default=365, ge=0)
    # How often each serving process meters the metered orders (every minute is charged once, however often).
    metering_seconds: float = Field(default=20.0, gt=0)
    ssh_connect_timeout: float = Field(default=10.0, gt=0)
    ssh_command_timeout: float = Field(default=900.0, gt=0)
    ssh_concurrency: int = Field(default=32, gt=0)

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'kboss.db').resolve()}"

    def key_ring(self) -> KeyRing:
        """The deployment keys: KBOSS_SECRET_KEY (several separated by commas, the first sealing), else the key
        file of the data dir (one per line), generated once; a file's ring follows `kboss keys rotate` live."""
        if self.secret_key:
            return KeyRing(parse_keys(self.secret_key))
        self._generated("secret.key", 48)
        return KeyRing(path=self.key_file)

    @property
    def key_file(self) -> Path:
        return self.data_dir / "secret.key"

    def resolved_site_password(self) -> str:
        """The local site agent's password: from the environment, else generated once into the data dir."""
        return self.site_password or self._generated("site.password", 24)

    def _generated(self, file_name: str, nbytes: int) -> str:
        path = self.data_dir / file_name
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(nbytes))
            path.chmod(0o600)
        return path.read_text().strip()


@lru_cache
def get_settings() -> Settings:
    return Settings()
