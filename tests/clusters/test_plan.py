"""The one declaration of each cluster operation's steps: the same for both backends, in the plan's order, with
the plan's timeouts, and a test's overrides applied to both alike."""

from __future__ import annotations

from kboss.clusters.ops import AGENT, CREATE, JOIN, SIMULATED
from kboss.clusters.plan import MARGIN, Timeouts, register_cluster_kinds
from kboss.operations.states import KINDS
from kboss.operations.steps import Registry
from kboss.wire.plan import MASTER, MAX_WAIT_SECONDS, WORKER


def _steps(registry: Registry, backend: str, kind: str) -> list[tuple[str, float, bool]]:
    found = registry.get(backend, kind)
    assert found is not None, (backend, kind)
    return [(step.name, step.timeout_seconds, step.per_node) for step in found.steps]


def test_every_kind_runs_the_same_steps_with_the_same_timeouts_on_both_backends() -> None:
    registry = register_cluster_kinds(Registry())
    assert {kind for _, kind in registry.handled()} == set(KINDS)
    for kind in KINDS:
        assert _steps(registry, AGENT, kind) == _steps(registry, SIMULATED, kind), kind


def test_builds_run_the_wire_plan_in_order_with_its_timeouts_and_a_margin() -> None:
    registry = register_cluster_kinds(Registry())
    build = {name: seconds for name, seconds, _ in _steps(registry, AGENT, CREATE)}
    assert list(build) == ["plan", *(step.name for step in MASTER)]
    assert build["kubeadm_init"] == 900 + MARGIN
    assert build["wait_ready"] == 60 + MAX_WAIT_SECONDS + MARGIN  # it may be asked to wait up to an hour
    join = [name for name, _, _ in _steps(registry, AGENT, JOIN)]
    assert join == ["plan", *(step.name for step in WORKER)]


def test_a_tests_timeout_override_applies_to_both_backends() -> None:
    registry = register_cluster_kinds(Registry(), Timeouts({"kubeadm_join": 0.5}))
    for backend in (AGENT, SIMULATED):
        assert dict((n, s) for n, s, _ in _steps(registry, backend, JOIN))["kubeadm_join"] == 0.5
