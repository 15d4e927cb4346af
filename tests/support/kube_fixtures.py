"""Fixtures for Kubernetes tests: one fake API server per session (plain HTTP, bearer token), reset per test.

- `fake`: the KubeFake behind it, emptied (objects and request log) for each test; seed it with add_node/add_pod...
- `kubeconfig`: kubeconfig text pointing at it.
- `kube`: an open lightkube AsyncClient from kboss.kube.client, closed after the test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from lightkube import AsyncClient

from kboss.kube.client import open_client
from tests.kubefake import FakeKubeServer, KubeFake


@pytest.fixture(scope="session")
def kube_server() -> Iterator[FakeKubeServer]:
    with FakeKubeServer(KubeFake()) as server:
        yield server


@pytest.fixture
def fake(kube_server: FakeKubeServer) -> KubeFake:
    kube_server.fake.reset()
    return kube_server.fake


@pytest.fixture
def kubeconfig(kube_server: FakeKubeServer, fake: KubeFake) -> str:
    return kube_server.kubeconfig()


@pytest.fixture
async def kube(kubeconfig: str) -> AsyncIterator[AsyncClient]:
    async with open_client(kubeconfig, timeout=10.0) as client:
        yield client
