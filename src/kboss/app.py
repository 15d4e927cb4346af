"""The ASGI applications: the platform with its site agent in one process (`kboss serve`), or the agent alone."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI

from kboss import __version__
from kboss.agent import api as site_api
from kboss.agent.access import SiteState
from kboss.agent.provision import routes as provision_routes
from kboss.api.audit import AuditMiddleware
from kboss.api.compat import catalog as _compat_catalog  # noqa: F401  (registers its handlers)
from kboss.api.compat import cluster_ops as _compat_cluster_ops  # noqa: F401  (registers its handlers)
from kboss.api.compat import instances as _compat_instances  # noqa: F401  (registers its handlers)
from kboss.api.compat import registry as compat_registry
from kboss.api.deps import screen_path
from kboss.api.security import SecurityMiddleware
from kboss.api.state import AppState
from kboss.api.v1 import audit as v1_audit
from kboss.api.v1 import auth as v1_auth
from kboss.api.v1 import catalog as v1_catalog
from kboss.api.v1 import cluster_ops as v1_cluster_ops
from kboss.api.v1 import customers as v1_customers
from kboss.api.v1 import instances as v1_instances
from kboss.api.v1 import operations as v1_operations
from kboss.api.v1 import statements as v1_statements
from kboss.api.v1 import users as v1_users
from kboss.audit import retention
from kboss.billing import metering
from kboss.clusters.plan import register_cluster_kinds
from kboss.clusters.site_access import SiteEnv
from kboss.common.offer_cache import TtlCache
from kboss.crypto import SecretBox
from kboss.db.engine import make_engine, make_sessionmaker, notifier, upgrade
from kboss.instances import service as instances
from kboss.logs import install_redaction
from kboss.operations.steps import Registry
from kboss.operations.worker import OperationWorker, worker_from_settings
from kboss.settings import Settings, get_settings
from kboss.sites.simulated.machines import SimulatedMachines
from kboss.ssh import ConnectOptions, KnownHostsStore
from kboss.web import routes as web_routes
from kboss.wire import errors

log = logging.getLogger("kboss")


async def open_state(settings: Settings) -> AppState:
    url = settings.resolved_database_url()
    await upgrade(url)
    engine = make_engine(url)
    box = SecretBox(settings.key_ring())
    offers: TtlCache[Any] = TtlCache(settings.quote_cache_seconds)
    return AppState(settings, engine, make_sessionmaker(engine), box, box.ring.primary, offers)


def site_state(settings: Settings) -> SiteState:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SiteState(
        user=settings.site_user,
        password=settings.resolved_site_password(),
        known_hosts=KnownHostsStore(settings.data_dir / "known_hosts"),
        ssh_options=ConnectOptions.from_settings(settings),
        data_dir=settings.data_dir,
    )


def operation_registry() -> Registry:
    """The steps every kind of operation runs (the same on both backends)."""
    return register_cluster_kinds(Registry())


async def start_worker(settings: Settings, state: AppState) -> OperationWorker | None:
    if not settings.worker_enabled:
        return None
    # Simulated centers' machines take the time real ones do, times the scale (a demo may go faster).
    env = SiteEnv(state.box, machines=SimulatedMachines(settings.simulated_time_scale))
    worker = worker_from_settings(settings, state.sessions, operation_registry(), env)
    await worker.start()
    return worker


def _base_app(lifespan: Callable[[FastAPI], Any]) -> FastAPI:
    install_redaction()
    app = FastAPI(
        title="kboss",
        version=__version__,
        openapi_url="/api/v1/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    errors.install(app)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    return app


def start_instance_sweeper(settings: Settings, state: AppState) -> asyncio.Task[None] | None:
    """Processes that do background work also fail instances a crash left half-changed (see `fail_abandoned`)."""
    if not settings.worker_enabled:
        return None
    sweep = instances.sweep_abandoned(state.sessions, settings.instance_stale_seconds, settings.worker_sweep_seconds)
    return asyncio.create_task(sweep, name="instance-sweeper")


def start_metering(settings: Settings, state: AppState) -> asyncio.Task[None] | None:
    """Processes that do background work meter customers' metered orders (exactly once across processes)."""
    if not settings.worker_enabled:
        return None
    return asyncio.create_task(metering.keep_metering(state.sessions, settings.metering_seconds), name="metering")


def start_audit_retention(settings: Settings, state: AppState) -> asyncio.Task[None] | None:
    """Every serving process deletes audit events past their retention (none when it is 0: keep forever)."""
    if settings.audit_retention_days <= 0:
        return None
    prune = retention.keep_pruning(state.sessions, settings.audit_retention_days)
    return asyncio.create_task(prune, name="audit-retention")


async def _stop(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


V1_DEPENDENCIES = [Depends(screen_path)]


def create_app(settings: Settings | None = None) -> FastAPI:
    """Platform (compat + native API) and site agent, in one process."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = await open_state(settings)
        app.state.kboss = state
        notes = notifier(state.sessions)
        worker: OperationWorker | None = None
        sweeper: asyncio.Task[None] | None = None
        pruner: asyncio.Task[None] | None = None
        meter: asyncio.Task[None] | None = None
        try:
            await notes.listen(state.engine)  # PostgreSQL: other processes' notes wake us too
            app.state.site = site_state(settings)
            worker = await start_worker(settings, state)
            app.state.operations_worker = worker
            sweeper = start_instance_sweeper(settings, state)
            pruner = start_audit_retention(settings, state)
            meter = start_metering(settings, state)
            log.info("kboss %s ready (database %s)", __version__, state.engine.url.render_as_string())
            yield
        finally:
            if worker is not None:
                await worker.stop()
            await notes.close()
            await _stop(meter)
            await _stop(pruner)
            await _stop(sweeper)
            await state.engine.dispose()

    app = _base_app(lifespan)
    # The compat table first: the spec's paths are the busiest, and one route serves them all.
    compat_registry.install(app)
    app.include_router(v1_auth.router, responses=errors.ERROR_RESPONSES, dependencies=V1_DEPENDENCIES)
    app.include_router(v1_catalog.router, responses=errors.ERROR_RESPONSES, dependencies=V1_DEPENDENCIES)
    app.include_router(v1_cluster_ops.router, responses=errors.ERROR_RESPONSES, dependencies=V1_DEPENDENCIES)
    app.include_router(v1_customers.router, responses=errors.ERROR_RESPONSES, dependencies=V1_DEPENDENCIES)
    app.include_router(v1_instances.router, responses=errors.ERROR_RESPONSES, dependencies=V1_DEPENDENCIES)
    app.include_router(v1_operations.router, responses=errors.ERROR_RESPONSES, dependencies=V1_DEPENDENCIES)
    app.include_router(v1_statements.router, responses=errors.ERROR_RESPONSES, dependencies=V1_DEPENDENCIES)
    app.include_router(v1_users.router, responses=errors.ERROR_RESPONSES, dependencies=V1_DEPENDENCIES)
    app.include_router(v1_audit.router, responses=errors.ERROR_RESPONSES, dependencies=V1_DEPENDENCIES)
    app.include_router(site_api.router)
    app.include_router(provision_routes.router)
    app.include_router(web_routes.router)
    # The console's cookie session lives here only; the agent alone (below) is called with Basic credentials.
    app.add_middleware(SecurityMiddleware)
    # Outermost, so that a refusal by the CSRF check is recorded too.
    app.add_middleware(AuditMiddleware)
    return app


def create_site_app(settings: Settings | None = None) -> FastAPI:
    """The site agent alone: stateless but for known host keys, no database."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.site = site_state(settings)
        log.info("kboss site agent %s ready", __version__)
        yield

    app = _base_app(lifespan)
    app.include_router(site_api.router)
    app.include_router(provision_routes.router)
    return app
