"""Simulated machines: a step acts once (its effect recorded, like the agent's observe-act-verify), faults come
when asked for and only then, a paused step can be seen waiting, and processes share a file of effects."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kboss.sites.simulated.machines import Effect, FileEffects, SimulatedFault, SimulatedMachines

FAST = 0.0001


async def test_a_step_acts_once_and_reports_its_work_done_the_second_time() -> None:
    machines, lines = SimulatedMachines(FAST), []
    effect = Effect("c1", "kubeadm_init", "d1")
    assert await machines.play(effect, lines.append) is True
    assert await machines.play(effect, lines.append) is False
    assert lines[-1] == "kubeadm_init: already done on d1, verified"
    assert await machines.play(Effect("c1", "kubeadm_init", "d2"), lines.append) is True  # another machine
    assert machines.count("kubeadm_init") == 2 and machines.count("kubeadm_init", node="d1") == 1


async def test_a_converging_step_acts_every_time() -> None:
    machines = SimulatedMachines(FAST)
    for _ in range(3):
        assert await machines.play(Effect("c1", "drain", "sim-02"), lambda _: None, once=False) is True
    assert machines.count("drain", node="sim-02") == 3


async def test_a_fault_fails_the_step_it_names_as_many_times_as_asked() -> None:
    machines = SimulatedMachines(FAST)
    machines.fail("kubeadm_join", node="d2")
    assert await machines.play(Effect("c1", "kubeadm_join", "d1"), lambda _: None)  # another machine: no fault
    with pytest.raises(SimulatedFault, match="kubeadm_join 在 d2 上失败"):
        await machines.play(Effect("c1", "kubeadm_join", "d2"), lambda _: None)
    assert machines.count("kubeadm_join", node="d2") == 0  # it failed before acting
    assert await machines.play(Effect("c1", "kubeadm_join", "d2"), lambda _: None)


async def test_a_paused_step_is_seen_waiting_until_released() -> None:
    machines = SimulatedMachines(FAST)
    gate = machines.pause("drain")
    playing = asyncio.create_task(machines.play(Effect("c1", "drain", "n1"), lambda _: None, once=False))
    async with asyncio.timeout(5):
        while not machines.paused("drain"):  # noqa: ASYNC110 - the machines are what changes
            await asyncio.sleep(0.001)
    assert not playing.done() and machines.count("drain") == 0
    gate.set()
    assert await playing is True and not machines.paused("drain")


async def test_machines_sharing_an_effects_file_see_each_others_work(tmp_path: Path) -> None:
    path = tmp_path / "effects.jsonl"
    first, second = SimulatedMachines(FAST, FileEffects(path)), SimulatedMachines(FAST, FileEffects(path))
    assert await first.play(Effect("c1", "preflight", "d1", "op-1", 1), lambda _: None)
    assert await second.play(Effect("c1", "preflight", "d1", "op-1", 2), lambda _: None) is False
    assert FileEffects(path).all() == [Effect("c1", "preflight", "d1", "op-1", 1)]
