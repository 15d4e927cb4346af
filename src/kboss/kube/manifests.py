"""The Kubernetes objects of a container instance, built as data — never as text templates (DESIGN §6).

`build_objects` returns the objects of a validated `InstanceSpec` (see `kboss.kube.instance_spec`) in apply
order and `object_refs` what to delete. Every user string lands in a data field (a label, a port, an env value
taken from the Secret `<id>-credentials`); the one shell script is a constant reading them from env vars.
"""

from __future__ import annotations

from kboss.kube.capacity import GPU_RESOURCE, gpu_model_affinity
from kboss.kube.instance_spec import (
    ANNOTATION_ID,
    ANNOTATION_NAME,
    CONTAINER_NAMES,
    DEFAULT_MOUNTS,
    DEFAULT_PORTS,
    LABEL_INSTANCE,
    LABEL_MANAGED_BY,
    LINUX_SCRIPT,
    MANAGED_BY,
    InstanceSpec,
    Manifest,
)
from kboss.kube.labels import (
    controller_name,
    instance_name,
    namespace_name,
    service_name,
    serviceaccount_name,
)
from kboss.kube.quantity import format_bytes, format_millicores

__all__ = [
    "InstanceSpec",
    "build_objects",
    "controller_name",
    "instance_name",
    "instance_selector",
    "namespace_name",
    "object_refs",
    "service_name",
    "serviceaccount_name",
]


def build_objects(spec: InstanceSpec) -> list[Manifest]:
    """Every object of the instance, in apply order (what others refer to comes first)."""
    objects = [*_shared(spec), _secret(spec)]
    if spec.storage_bytes and spec.engine != "StatefulSet":
        objects.append(_object("v1", "PersistentVolumeClaim", _meta(spec, spec.pvc_name), _pvc_spec(spec)))
    objects.append(_service(spec))
    if spec.port_mode == "Ingress":
        objects.append(_ingress(spec))
    objects.append(_workload(spec))
    return objects


def object_refs(spec: InstanceSpec, *, include_shared: bool = False) -> list[Manifest]:
    """The instance's objects reduced to apiVersion/kind/metadata.name/namespace, in delete order (workload first).

    The shared Namespace and ServiceAccount only with `include_shared`. A StatefulSet's volumes are listed by
    their generated names too, in case the API server does not enforce its retention policy.
    """
    refs = [_ref(obj) for obj in reversed(build_objects(spec))]
    if spec.engine == "StatefulSet" and spec.storage_bytes:
        refs[1:1] = [
            _ref(
                _object(
                    "v1", "PersistentVolumeClaim", {"name": f"data-{spec.controller}-{i}", "namespace": spec.namespace}
                )
            )
            for i in range(spec.replicas)
        ]
    return [ref for ref in refs if include_shared or ref["kind"] not in ("Namespace", "ServiceAccount")]


def instance_selector(spec: InstanceSpec) -> str:
    """A label selector matching every object of the instance (and pods, and nothing shared)."""
    return f"{LABEL_INSTANCE}={spec.name}"


def _ref(obj: Manifest) -> Manifest:
    """Enough of an object to delete it: what `kboss.kube.apply.delete_objects` takes."""
    meta = {key: obj["metadata"][key] for key in ("name", "namespace") if key in obj["metadata"]}
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "metadata": meta}


def _object(api_version: str, kind: str, metadata: Manifest, spec: Manifest | None = None) -> Manifest:
    obj: Manifest = {"apiVersion": api_version, "kind": kind, "metadata": metadata}
    return obj if spec is None else {**obj, "spec": spec}


def _labels(spec: InstanceSpec) -> dict[str, str]:
    labels = {LABEL_INSTANCE: spec.name, LABEL_MANAGED_BY: MANAGED_BY}
    if spec.self_label:
        labels[spec.self_label[0]] = spec.self_label[1]
    return labels


def _meta(spec: InstanceSpec, name: str) -> Manifest:
    annotations = {ANNOTATION_ID: spec.instance_id}
    if spec.display_name:
        annotations[ANNOTATION_NAME] = spec.display_name
    return {"name": name, "namespace": spec.namespace, "labels": _labels(spec), "annotations": annotations}


def _shared(spec: InstanceSpec) -> list[Manifest]:
    """Namespace and ServiceAccount: labelled as kboss's but not as the instance's, since others share them."""
    labels = {LABEL_MANAGED_BY: MANAGED_BY}
    meta = {"name": spec.service_account, "namespace": spec.namespace, "labels": labels}
    return [
        _object("v1", "Namespace", {"name": spec.namespace, "labels": labels}),
        _object("v1", "ServiceAccount", meta),
    ]


def _secret(spec: InstanceSpec) -> Manifest:
    data = {"username": spec.auth_user, "password": spec.auth_password.get_secret_value()}
    return {**_object("v1", "Secret", _meta(spec, spec.secret_name)), "type": "Opaque", "stringData": data}


def _pvc_spec(spec: InstanceSpec) -> Manifest:
    storage = format_bytes(spec.storage_bytes)
    return {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": storage}}}


def _service(spec: InstanceSpec) -> Manifest:
    port: Manifest = {"name": "main", "protocol": "TCP", "port": spec.api_port, "targetPort": spec.inside_port}
    if spec.outside_port is not None:
        port["nodePort"] = spec.outside_port
    kind = "ClusterIP" if spec.port_mode == "Ingress" else spec.port_mode
    body = {"type": kind, "selector": {LABEL_INSTANCE: spec.name}, "ports": [port]}
    return _object("v1", "Service", _meta(spec, spec.service), body)


def _ingress(spec: InstanceSpec) -> Manifest:
    backend = {"service": {"name": spec.service, "port": {"number": spec.api_port}}}
    rule: Manifest = {"http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}
    if spec.ingress_host:
        rule = {"host": spec.ingress_host, **rule}
    return _object("networking.k8s.io/v1", "Ingress", _meta(spec, f"{spec.name}-ingress"), {"rules": [rule]})


def _workload(spec: InstanceSpec) -> Manifest:
    template = {"metadata": {"labels": _labels(spec)}, "spec": _pod_spec(spec)}
    meta = _meta(spec, spec.controller)
    if spec.engine == "Standalone":
        return _object("v1", "Pod", meta, template["spec"])
    job = {"backoffLimit": 6, "template": template}
    if spec.engine == "Job":
        return _object("batch/v1", "Job", meta, job)
    if spec.engine == "CronJob":  # Forbid: the next run must not contend for the volume with one still running
        cron = {
            "schedule": spec.schedule,
            "concurrencyPolicy": "Forbid",
            "jobTemplate": {"metadata": {"labels": _labels(spec)}, "spec": job},
        }
        return _object("batch/v1", "CronJob", meta, cron)
    body: Manifest = {"selector": {"matchLabels": {LABEL_INSTANCE: spec.name}}, "template": template}
    if spec.engine == "DaemonSet":
        return _object("apps/v1", "DaemonSet", meta, body)
    body["replicas"] = spec.replicas
    if spec.engine == "Deployment":
        if spec.storage_bytes:  # a rolling update would start the new pod before the old one frees the volume
            body["strategy"] = {"type": "Recreate"}
        return _object("apps/v1", "Deployment", meta, body)
    return _object("apps/v1", "StatefulSet", meta, _statefulset(spec, body))


def _statefulset(spec: InstanceSpec, body: Manifest) -> Manifest:
    """One volume per replica (the point of a StatefulSet), deleted with it: deleting an instance deletes all."""
    body["serviceName"] = spec.service
    if spec.storage_bytes:
        body["volumeClaimTemplates"] = [
            {"metadata": {"name": "data", "labels": _labels(spec)}, "spec": _pvc_spec(spec)}
        ]
        body["persistentVolumeClaimRetentionPolicy"] = {"whenDeleted": "Delete", "whenScaled": "Retain"}
    return body


def _pod_spec(spec: InstanceSpec) -> Manifest:
    pod: Manifest = {
        "serviceAccountName": spec.service_account,
        "automountServiceAccountToken": False,  # instances have no business with the cluster's API
        "enableServiceLinks": False,  # a Service named mysql would put MYSQL_PORT=tcp://... in the env
        "restartPolicy": spec.restart_policy,
        "containers": [_container(spec)],
    }
    if spec.node_selector:
        pod["nodeSelector"] = dict(spec.node_selector)
    if spec.gpu and spec.gpu_model:
        pod["affinity"] = gpu_model_affinity(spec.gpu_model)
    if spec.instance_type == "Jupyter":
        pod["securityContext"] = {"fsGroup": 100}  # jovyan's group: the notebook may write to its volume
    if spec.storage_bytes and spec.engine != "StatefulSet":
        pod["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": spec.pvc_name}}]
    return pod


def _container(spec: InstanceSpec) -> Manifest:
    container: Manifest = {
        "name": CONTAINER_NAMES[spec.instance_type],
        "image": spec.image,
        "ports": [{"name": "main", "containerPort": spec.inside_port, "protocol": "TCP"}],
        "resources": _resources(spec),
        **_wiring(spec),
    }
    if spec.instance_type != "LinuxOS":
        container["readinessProbe"] = {"tcpSocket": {"port": spec.inside_port}, "periodSeconds": 10}
    if spec.storage_bytes:
        mount = {"name": "data", "mountPath": spec.mount_path}
        if spec.instance_type == "RelationalDB":  # a fresh volume's lost+found makes mysqld --initialize fail
            mount["subPath"] = "mysql"
        container["volumeMounts"] = [mount]
    return container


def _resources(spec: InstanceSpec) -> Manifest:
    amounts = {"cpu": format_millicores(spec.cpu_millicores), "memory": format_bytes(spec.memory_bytes)}
    if spec.gpu:
        amounts[GPU_RESOURCE] = str(spec.gpu)
    if spec.ephemeral_bytes:
        amounts["ephemeral-storage"] = format_bytes(spec.ephemeral_bytes)
    # requests = limits: what the customer pays for is reserved, and no more is used (Guaranteed QoS).
    return {"requests": amounts, "limits": dict(amounts)}


def _from_secret(spec: InstanceSpec, env: str, key: str) -> Manifest:
    return {"name": env, "valueFrom": {"secretKeyRef": {"name": spec.secret_name, "key": key}}}


def _wiring(spec: InstanceSpec) -> Manifest:
    """Command, args and env as each image expects them. Ubuntu: the constant script sets the password.
    MySQL: MYSQL_ROOT_PASSWORD, and MYSQL_USER/MYSQL_PASSWORD (same password) for another user; data in the
    volume's `mysql` directory. Jupyter: the password is the token; there is no user."""
    if spec.instance_type == "LinuxOS":
        env = [_from_secret(spec, "AUTH_USER", "username"), _from_secret(spec, "AUTH_PASSWORD", "password")]
        return {"command": ["/bin/bash", "-c", LINUX_SCRIPT], "env": env}
    if spec.instance_type == "Jupyter":
        port = {"name": "JUPYTER_PORT", "value": str(spec.inside_port)}
        return {"env": [_from_secret(spec, "JUPYTER_TOKEN", "password"), port]}
    env = [_from_secret(spec, "MYSQL_ROOT_PASSWORD", "password")]
    if spec.auth_user != "root":  # the image creates this user, and refuses MYSQL_USER=root
        env += [_from_secret(spec, "MYSQL_USER", "username"), _from_secret(spec, "MYSQL_PASSWORD", "password")]
    args = [] if spec.inside_port == DEFAULT_PORTS["RelationalDB"] else [f"--port={spec.inside_port}"]
    if spec.storage_bytes and spec.mount_path != DEFAULT_MOUNTS["RelationalDB"]:
        args.append(f"--datadir={spec.mount_path}")
    return {"env": env, "args": args} if args else {"env": env}
