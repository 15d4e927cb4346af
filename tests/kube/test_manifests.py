import json
from typing import Any

import kubernetes_validate
import pytest

from kboss.errors import InvalidParameter, MissingParameter
from kboss.kube.instance_spec import ENGINES, INSTANCE_TYPES, PORT_MODES
from kboss.kube.manifests import (
    InstanceSpec,
    build_objects,
    controller_name,
    instance_selector,
    namespace_name,
    object_refs,
    service_name,
    serviceaccount_name,
)
from tests.support.spec import success_example

PASSWORD = "S3cret-Passw0rd"


def spec_example() -> dict[str, Any]:
    """The `data` of new_cpcpodyaml.dspy's example answer: the parameters as the platform stores them."""
    return dict(success_example("/dev/cpcc/cpcpodyaml/new_cpcpodyaml.dspy")["data"])


def params(**overrides: Any) -> dict[str, Any]:
    """Parameters as a platform form sends them, minus the names (which the platform derives)."""
    base = {
        "id": "evfldtxjkr3jd8zxnfhd5",
        "clusterid": "4hBm8atruISOU2bs24t_N",
        "orgid": "mIWUHBeeDM8mwAFPIQ8pS",
        "source_name": "my instance",
        "instance_type": "LinuxOS",
        "source_podengine": "StatefulSet",
        "source_replicasetnum": "1",
        "source_authuser": "root",
        "source_authpasswd": PASSWORD,
        "source_cpurate": "1000m",
        "source_memrate": "512Mi",
        "source_gpu": "0",
        "source_selflabel": "app:ubuntu3",
        "source_portmode": "NodePort",
        "source_restartpolicy": "Always",
        "source_apiport": "6035",
        "source_insideport": "22",
        "source_outsideport": "30063",
        "source_mountpath": "/mnt/data",
        "source_storagelimits": "49Gi",
        "source_nodeselector": "kyy-gpu=false",
    }
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not None}


def build(**overrides: Any) -> list[dict[str, Any]]:
    return build_objects(InstanceSpec.from_params(params(**overrides)))


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [obj for obj in objects if obj["kind"] == kind]
    return found


def pod_spec(objects: list[dict[str, Any]]) -> dict[str, Any]:
    workload = objects[-1]
    spec = workload["spec"]
    if workload["kind"] == "Pod":
        return spec  # type: ignore[no-any-return]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"]  # type: ignore[no-any-return]


def workable(engine: str, **overrides: Any) -> dict[str, Any]:
    """Overrides that make `engine` valid: Jobs restart OnFailure, DaemonSets take no volume."""
    extra: dict[str, Any] = {"source_podengine": engine}
    if engine in ("Job", "CronJob"):
        extra["source_restartpolicy"] = "OnFailure"
    if engine == "DaemonSet":
        extra["source_storagelimits"] = "0"
    return {**extra, **overrides}


def assert_valid(objects: list[dict[str, Any]]) -> None:
    for obj in objects:
        kubernetes_validate.validate(obj, "1.28", strict=True)


def test_names_follow_the_spec_example() -> None:
    example = spec_example()
    spec = InstanceSpec.from_params(example)
    assert spec.namespace == example["namespace_name"] == "4hbm8atruisou2bs24t-n-miwuhbeedm8mwafpiq8ps"
    assert spec.service_account == "4hbm8atruisou2bs24t-n-miwuhbeedm8mwafpiq8ps-serviceaccount"
    assert spec.controller == "evfldtxjkr3jd8zxnfhd5-statefulset"
    assert spec.service == "evfldtxjkr3jd8zxnfhd5-service"
    assert namespace_name("4hBm8atruISOU2bs24t_N", "mIWUHBeeDM8mwAFPIQ8pS") == spec.namespace
    assert serviceaccount_name(spec.namespace) == spec.service_account
    assert controller_name("evfldtxjkr3jd8zxnfhd5", "StatefulSet") == spec.controller
    assert service_name("evfldtxjkr3jd8zxnfhd5") == spec.service
    assert_valid(build_objects(spec))


def test_the_agent_accepts_names_instead_of_the_instance_id() -> None:
    """yaml_apply_delete sends namespace_name, podcd_name, ... but no id."""
    sent = params(
        id=None,
        clusterid=None,
        orgid=None,
        namespace_name="team-a",
        serviceaccount_name="team-a-serviceaccount",
        podcd_name="abc123-deployment",
        service_name="abc123-service",
        source_podengine="Deployment",
    )
    spec = InstanceSpec.from_params(sent)
    assert (spec.instance_id, spec.namespace, spec.controller) == ("abc123", "team-a", "abc123-deployment")


def test_service_names_start_with_a_letter() -> None:
    assert service_name("4hBm8atruISOU2bs24t_N") == "svc-4hbm8atruisou2bs24t-n-service"


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("port_mode", PORT_MODES)
def test_every_engine_and_port_mode_builds_valid_objects(engine: str, port_mode: str) -> None:
    objects = build(
        **workable(
            engine,
            source_portmode=port_mode,
            source_gpu="1",
            disk_sys_limit="20",
            gpu_model="RTX5090-32G",
            source_ingresshost="lab.example.com",
        )
    )
    assert_valid(objects)
    kinds = [obj["kind"] for obj in objects]
    assert kinds[:3] == ["Namespace", "ServiceAccount", "Secret"]
    assert kinds[-1] == ("Pod" if engine == "Standalone" else engine)
    assert ("Ingress" in kinds) == (port_mode == "Ingress")


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("instance_type", INSTANCE_TYPES)
def test_every_instance_type_builds_valid_objects(engine: str, instance_type: str) -> None:
    objects = build(**workable(engine, instance_type=instance_type, source_insideport=None, source_authuser="alice"))
    assert_valid(objects)


def test_the_password_is_only_in_the_secret() -> None:
    for instance_type in INSTANCE_TYPES:
        objects = build(instance_type=instance_type, source_authuser="alice")
        secret = by_kind(objects, "Secret")
        assert secret["stringData"] == {"username": "alice", "password": PASSWORD}
        others = [obj for obj in objects if obj["kind"] != "Secret"]
        assert PASSWORD not in json.dumps(others)


def test_ubuntu_sets_the_password_from_env_and_stays_up() -> None:
    container = pod_spec(build(source_authuser="alice"))["containers"][0]
    assert container["image"] == "docker.io/library/ubuntu:22.04"
    script = container["command"][-1]
    assert "chpasswd" in script and "sleep infinity" in script
    assert "alice" not in json.dumps(container["command"])
    refs = {env["name"]: env["valueFrom"]["secretKeyRef"] for env in container["env"]}
    assert refs["AUTH_PASSWORD"] == {"name": "evfldtxjkr3jd8zxnfhd5-credentials", "key": "password"}


def test_mysql_gets_its_passwords_and_keeps_data_on_the_volume() -> None:
    objects = build(
        instance_type="RelationalDB",
        source_podengine="Deployment",
        source_insideport=None,
        source_authuser="shop",
        pod_imagepath=None,
        source_mountpath=None,
    )
    container = pod_spec(objects)["containers"][0]
    assert container["image"] == "docker.io/library/mysql:8.0"
    assert {env["name"] for env in container["env"]} == {"MYSQL_ROOT_PASSWORD", "MYSQL_USER", "MYSQL_PASSWORD"}
    assert container["ports"][0]["containerPort"] == 3306
    assert container["volumeMounts"] == [{"name": "data", "mountPath": "/var/lib/mysql", "subPath": "mysql"}]
    root = pod_spec(build(instance_type="RelationalDB", source_insideport=None))["containers"][0]
    assert [env["name"] for env in root["env"]] == ["MYSQL_ROOT_PASSWORD"]


def test_jupyter_uses_the_password_as_token_and_serves_its_work_dir() -> None:
    objects = build(
        instance_type="Jupyter",
        source_insideport=None,
        source_apiport=None,
        source_mountpath=None,
        pod_imagepath=None,
        source_portmode="Ingress",
        source_ingresshost="nb.example.com",
    )
    pod = pod_spec(objects)
    container = pod["containers"][0]
    assert container["image"] == "docker.io/jupyter/base-notebook:latest"
    assert container["env"][0] == {
        "name": "JUPYTER_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "evfldtxjkr3jd8zxnfhd5-credentials", "key": "password"}},
    }
    assert container["ports"][0]["containerPort"] == 8888
    assert container["volumeMounts"][0]["mountPath"] == "/home/jovyan/work"
    ingress = by_kind(objects, "Ingress")
    assert ingress["spec"]["rules"][0]["host"] == "nb.example.com"
    assert by_kind(objects, "Service")["spec"]["type"] == "ClusterIP"


def test_resources_are_reserved_as_requested() -> None:
    objects = build(source_cpurate="1500m", source_memrate="2Gi", source_gpu="2", disk_sys_limit="30")
    resources = pod_spec(objects)["containers"][0]["resources"]
    expected = {"cpu": "1500m", "memory": "2Gi", "nvidia.com/gpu": "2", "ephemeral-storage": "30Gi"}
    assert resources == {"requests": expected, "limits": expected}


def test_a_gpu_model_pins_the_pod_to_nodes_with_that_model() -> None:
    affinity = pod_spec(build(source_gpu="1", gpu_model="RTX5090-32G"))["affinity"]
    terms = affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms[0]["matchExpressions"][0]["key"] == "kboss.io/gpu-model"
    assert "RTX5090-32G" in terms[0]["matchExpressions"][0]["values"]


def test_labels_selector_and_service_come_from_the_parameters() -> None:
    objects = build()
    pod = pod_spec(objects)
    assert pod["nodeSelector"] == {"kyy-gpu": "false"}
    assert objects[-1]["spec"]["template"]["metadata"]["labels"] == {
        "app.kubernetes.io/instance": "evfldtxjkr3jd8zxnfhd5",
        "app.kubernetes.io/managed-by": "kboss",
        "app": "ubuntu3",
    }
    port = by_kind(objects, "Service")["spec"]["ports"][0]
    assert (port["port"], port["targetPort"], port["nodePort"]) == (6035, 22, 30063)
    assert pod["serviceAccountName"] == "4hbm8atruisou2bs24t-n-miwuhbeedm8mwafpiq8ps-serviceaccount"


def test_a_statefulset_owns_its_volumes_and_deleting_it_deletes_them() -> None:
    spec = InstanceSpec.from_params(params(source_replicasetnum="2"))
    statefulset = build_objects(spec)[-1]
    assert statefulset["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "49Gi"
    assert statefulset["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Delete"
    names = [(ref["kind"], ref["metadata"]["name"]) for ref in object_refs(spec)]
    assert names == [
        ("StatefulSet", "evfldtxjkr3jd8zxnfhd5-statefulset"),
        ("PersistentVolumeClaim", "data-evfldtxjkr3jd8zxnfhd5-statefulset-0"),
        ("PersistentVolumeClaim", "data-evfldtxjkr3jd8zxnfhd5-statefulset-1"),
        ("Service", "evfldtxjkr3jd8zxnfhd5-service"),
        ("Secret", "evfldtxjkr3jd8zxnfhd5-credentials"),
    ]


def test_other_engines_use_one_claim_listed_for_deletion() -> None:
    spec = InstanceSpec.from_params(params(source_podengine="Deployment"))
    objects = build_objects(spec)
    assert by_kind(objects, "PersistentVolumeClaim")["metadata"]["name"] == "evfldtxjkr3jd8zxnfhd5-data"
    assert objects[-1]["spec"]["strategy"] == {"type": "Recreate"}
    refs = object_refs(spec, include_shared=True)
    assert [ref["kind"] for ref in refs] == [
        "Deployment",
        "Service",
        "PersistentVolumeClaim",
        "Secret",
        "ServiceAccount",
        "Namespace",
    ]
    assert instance_selector(spec) == "app.kubernetes.io/instance=evfldtxjkr3jd8zxnfhd5"


def test_no_storage_means_no_claim() -> None:
    objects = build(source_podengine="Deployment", source_storagelimits="0")
    assert "PersistentVolumeClaim" not in [obj["kind"] for obj in objects]
    assert "volumes" not in pod_spec(objects)


def test_cronjobs_run_on_their_schedule() -> None:
    cron = build(**workable("CronJob", source_schedule="*/5 * * * *"))[-1]
    assert cron["spec"]["schedule"] == "*/5 * * * *"
    assert build(**workable("CronJob"))[-1]["spec"]["schedule"] == "0 * * * *"


@pytest.mark.parametrize(
    ("overrides", "parameter"),
    [
        ({"source_podengine": "ReplicaSet"}, "source_podengine"),
        ({"instance_type": "Windows"}, "instance_type"),
        ({"source_cpurate": "-1"}, "source_cpurate"),
        ({"source_cpurate": "0"}, "source_cpurate"),
        ({"source_memrate": "512"}, "source_memrate"),
        ({"source_memrate": "lots"}, "source_memrate"),
        ({"source_outsideport": "8080"}, "source_outsideport"),
        ({"source_outsideport": "32768"}, "source_outsideport"),
        ({"source_apiport": "70000"}, "source_apiport"),
        ({"source_restartpolicy": "OnFailure"}, "source_restartpolicy"),
        ({"source_podengine": "Job", "source_restartpolicy": "Always"}, "source_restartpolicy"),
        ({"source_restartpolicy": "Sometimes"}, "source_restartpolicy"),
        ({"source_selflabel": "app:ubuntu;reboot"}, "source_selflabel"),
        ({"source_selflabel": "app:$(reboot)"}, "source_selflabel"),
        ({"source_selflabel": "app.kubernetes.io/instance:other"}, "source_selflabel"),
        ({"source_nodeselector": "kyy-gpu=false;reboot"}, "source_nodeselector"),
        ({"source_mountpath": "data"}, "source_mountpath"),
        ({"source_mountpath": "/mnt/../etc"}, "source_mountpath"),
        ({"source_mountpath": "/etc"}, "source_mountpath"),
        ({"source_mountpath": "/mnt/my data"}, "source_mountpath"),
        ({"source_storagelimits": "a lot"}, "source_storagelimits"),
        ({"source_replicasetnum": "0"}, "source_replicasetnum"),
        ({"source_gpu": "-1"}, "source_gpu"),
        ({"pod_imagepath": "ubuntu:22.04; rm -rf /"}, "pod_imagepath"),
        ({"source_authuser": "root;id"}, "source_authuser"),
        ({"source_authpasswd": "short"}, "source_authpasswd"),
        ({"source_authpasswd": "line\nroot:x"}, "source_authpasswd"),
        ({"source_podengine": "DaemonSet"}, "source_storagelimits"),
        ({"source_podengine": "Deployment", "source_replicasetnum": "3"}, "source_replicasetnum"),
        ({"instance_type": "RelationalDB", "source_portmode": "Ingress"}, "source_portmode"),
        (
            {"source_podengine": "CronJob", "source_restartpolicy": "Never", "source_schedule": "every hour"},
            "source_schedule",
        ),
        ({"id": "../etc"}, "id"),
        ({"namespace_name": "Team_A"}, "namespace_name"),
    ],
)
def test_bad_parameters_are_refused_naming_the_field(overrides: dict[str, Any], parameter: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        InstanceSpec.from_params(params(**overrides))
    assert caught.value.parameter == parameter
    assert parameter in caught.value.message


@pytest.mark.parametrize("missing", ["source_authpasswd", "source_cpurate", "source_memrate", "instance_type"])
def test_missing_required_parameters_are_named(missing: str) -> None:
    with pytest.raises(MissingParameter) as caught:
        InstanceSpec.from_params(params(**{missing: None}))
    assert caught.value.parameter == missing


def test_the_password_never_shows_in_the_spec_repr() -> None:
    spec = InstanceSpec.from_params(params())
    assert PASSWORD not in repr(spec) and PASSWORD not in str(spec)
