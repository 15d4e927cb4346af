"""A fake kube-apiserver for tests: real HTTP, real status codes and `Status` bodies, resourceVersions, label and
field selectors, server-side apply, the eviction subresource with PodDisruptionBudgets, schema validation.

    server = FakeKubeServer(KubeFake()).start()
    server.fake.add_node("worker-1", roles=["worker"])
    server.fake.add_pod("web-1", "shop", state="image_pull_backoff", owner=("ReplicaSet", "web-5d"))
    text = server.kubeconfig()                     # for kboss.kube.client.create_client(text)
    server.fake.requests_to("PATCH", "/nodes/")    # what the code under test sent
    server.stop()

Admission as kube-apiserver's plugins: LimitRanger defaults, ResourceQuota for pods and claims (403 `exceeded
quota`; a quota's status is computed when read), PodSecurity `enforce` for the common baseline checks.
It does not run controllers (a Deployment gets no pods), json-patch or dry runs; watches follow `watch`.
"""

from tests.kubefake.fake import KubeFake, RecordedRequest
from tests.kubefake.seed import POD_STATES, node, owner_reference, pod
from tests.kubefake.server import APISERVER_NAME, FakeKubeServer, TLSMaterial, kubeconfig_yaml, make_tls

__all__ = [
    "APISERVER_NAME",
    "POD_STATES",
    "FakeKubeServer",
    "KubeFake",
    "RecordedRequest",
    "TLSMaterial",
    "kubeconfig_yaml",
    "make_tls",
    "node",
    "owner_reference",
    "pod",
]
