// Instances (资源实例) of a cluster: list, create (the spec's dropdowns: engine, instance type and its images,
// port mode, restart policy, node labels from the catalog), scale and delete, through the native API
// (`/api/v1/clusters/{id}/instances`, `/api/v1/instances/{id}`). The server checks every field and names the
// wrong one; the dialog marks it and stays open.

import { api, seg } from "../api.js";
import { t } from "../i18n.js";
import { badge, button, clear, confirmDialog, emptyState, field, formDialog, h, pageHeader, toast, toastError } from "../ui.js";
import { listClusters, openCenterPage } from "./common.js";
import { listPage } from "./list.js";

export const ENGINES = ["StatefulSet", "Deployment", "DaemonSet", "CronJob", "Job", "Standalone"];
export const IMAGES = {
  LinuxOS: ["docker.io/library/ubuntu:22.04"],
  RelationalDB: ["docker.io/library/mysql:8.0"],
  Jupyter: ["docker.io/jupyter/base-notebook:latest"],
};
const PORT_MODES = ["NodePort", "Ingress", "LoadBalancer"];
// The API server accepts only Always for long-running controllers and refuses it for Jobs (kube/instance_spec.py).
const RESTART = {
  StatefulSet: ["Always"],
  Deployment: ["Always"],
  DaemonSet: ["Always"],
  Job: ["OnFailure", "Never"],
  CronJob: ["OnFailure", "Never"],
  Standalone: ["Always", "OnFailure", "Never"],
};

// A ready instance reads what its pods do (the server's `health`); any other state is the change under way.
const stateLabel = (i) =>
  i.state === "ready" && i.health
    ? t(`instance.health.${i.health}`, { fallback: i.state_text })
    : t(`instance.state.${i.state}`, { fallback: i.state_text });
const stateTone = (i) => {
  if (i.last_error || i.state === "failed" || i.health === "degraded") return "error";
  return i.state === "ready" && i.health === "running" ? "ok" : "warn";
};

const setOptions = (select, values, labels = values) => {
  const keep = select.value;
  select.replaceChildren(...values.map((v, i) => h("option", { value: v, text: labels[i] })));
  if (values.includes(keep)) select.value = keep;
};

// An amount and its unit side by side; the unit select has no name of its own in the API (joined on submit).
function amountField(name, label, value, units, hint) {
  const box = field({ name, label, value, inputmode: "decimal", hint });
  const unit = h(
    "select",
    { name: `${name}__unit`, "data-testid": `unit-${name}`, "aria-label": `${label} ${t("instance.unit")}` },
    units.map(([v, text]) => h("option", { value: v, text })),
  );
  const input = box.querySelector("input");
  input.after(h("span", { class: "amount-unit" }, unit));
  input.parentElement.classList.add("field-amount");
  return box;
}

function modelField(name, label, components, type, optional) {
  const models = [...new Set(components.filter((c) => c.type === type).map((c) => c.model))];
  if (!models.length) return { name, label, hint: t("instance.noModel") };
  const options = models.map((m) => [m, m]);
  return { name, label, type: "select", options: optional ? [["", t("instance.none_")], ...options] : options };
}


// The create dialog's fields; `components` and node `labels` are the center's catalog (the models offered).
function instanceFields(components, labels) {
  const nodeLabels = labels.map((l) => `${l.label_key}${l.symbol}${l.label_value}`);
  return [
    { name: "source_name", label: t("instance.name"), required: true },
    {
      name: "instance_type",
      label: t("instance.type"),
      type: "select",
      options: Object.keys(IMAGES).map((k) => [k, t(`instance.type.${k}`)]),
    },
    { name: "pod_imagepath", label: t("instance.image"), type: "select", options: [], wide: true },
    { name: "source_podengine", label: t("instance.podengine"), type: "select", options: ENGINES.map((e) => [e, e]) },
    { name: "source_replicasetnum", label: t("instance.replicas"), type: "number", min: 1, value: "1" },
    { name: "source_restartpolicy", label: t("instance.restart"), type: "select", options: [] },
    { name: "source_schedule", label: t("instance.schedule"), placeholder: "0 * * * *" },
    { name: "source_authuser", label: t("instance.authuser"), value: "root" },
    {
      name: "source_authpasswd",
      label: t("instance.authpasswd"),
      type: "password",
      required: true,
      autocomplete: "new-password",
      hint: t("instance.passwdHint"),
    },
    modelField("cpu_model", t("instance.cpuModel"), components, "cpu"),
    amountField("source_cpurate", t("instance.cpu"), "1", [
      ["", t("instance.unitCores")],
      ["m", "m (1/1000)"],
    ]),
    modelField("memory_model", t("instance.memModel"), components, "memory", true),
    amountField("source_memrate", t("instance.memory"), "2", [
      ["Gi", "Gi"],
      ["Mi", "Mi"],
    ]),
    modelField("gpu_model", t("instance.gpuModel"), components, "gpu", true),
    { name: "source_gpu", label: t("instance.gpu"), type: "number", min: 0, value: "0", hint: t("instance.gpuHint") },
    amountField(
      "source_storagelimits",
      t("instance.storage"),
      "0",
      [
        ["Gi", "Gi"],
        ["Ti", "Ti"],
      ],
      t("instance.storageHint"),
    ),
    { name: "source_mountpath", label: t("instance.mountpath"), placeholder: "/mnt/data" },
    {
      name: "source_portmode",
      label: t("instance.portmode"),
      type: "select",
      options: PORT_MODES.map((p) => [p, p]),
    },
    { name: "source_insideport", label: t("instance.insideport"), type: "number", min: 1, hint: t("instance.portHint") },
    { name: "source_outsideport", label: t("instance.outsideport"), type: "number", min: 30000, hint: "30000-32767" },
    {
      name: "source_nodeselector",
      label: t("instance.nodeselector"),
      type: "select",
      options: [["", t("instance.anyNode")], ...nodeLabels.map((l) => [l, l])],
      hint: nodeLabels.length ? undefined : t("instance.noLabels"),
    },
    {
      name: "source_selflabel",
      label: t("instance.selflabel"),
      placeholder: "app:ubuntu3",
      hint: t("instance.selflabelHint"),
    },
  ];
}

// The choices that follow others: the type's images, the controller's restart policies; a schedule only for a
// CronJob, a node port except behind an Ingress.
function followChoices(form) {
  const kind = form.elements.namedItem("instance_type").value;
  setOptions(form.elements.namedItem("pod_imagepath"), IMAGES[kind]);
  const engine = form.elements.namedItem("source_podengine").value;
  setOptions(form.elements.namedItem("source_restartpolicy"), RESTART[engine]);
  const schedule = form.elements.namedItem("source_schedule");
  schedule.closest(".field").hidden = engine !== "CronJob";
  const outside = form.elements.namedItem("source_outsideport");
  outside.closest(".field").hidden = form.elements.namedItem("source_portmode").value === "Ingress";
}

// The API's body from the form: an amount joined to its unit, blanks and the fields of other choices left out.
function body(values) {
  const out = {};
  for (const [name, value] of Object.entries(values)) {
    if (name.endsWith("__unit") || value === "") continue;
    const unit = values[`${name}__unit`];
    out[name] = unit !== undefined && value !== "0" ? `${value}${unit}` : value;
  }
  if (out.source_podengine !== "CronJob") delete out.source_schedule;
  if (out.source_portmode === "Ingress") delete out.source_outsideport;
  if (out.source_gpu === "0") delete out.gpu_model;
  return out;
}

export async function render(ctx) {
  const page = await openCenterPage(ctx, "instances");
  if (!page) return;
  const { head, center } = page;
  const create = button(t("instance.create"), () => createInstance(), {
    kind: "primary",
    disabled: true,
    testid: "instance-create",
  });
  head.prepend(pageHeader(t("instance.title", { center: center.name }), create));
  const clusters = await listClusters(center.id);
  if (!clusters.length) return clear(page.body, emptyState(t("cluster.none")));
  const clusterSel = h(
    "select",
    { id: "inst-cluster", "data-testid": "instance-cluster", onchange: () => load() },
    clusters.map((c) => h("option", { value: c.id, text: c.name })),
  );
  const wanted = ctx.query.get("cluster");
  if (wanted && clusters.some((c) => c.id === wanted)) clusterSel.value = wanted;
  head.append(
    h("div", { class: "center-picker" }, h("label", { for: "inst-cluster", text: t("component.cluster") }), clusterSel),
  );
  const list = listPage(page.body, {
    path: () => `/api/v1/clusters/${seg(clusterSel.value)}/instances`,
    columns,
    showLoading: true,
    empty: t("instance.none"),
    testid: "instances-table",
    rowTestid: (i) => `instance-${i.source_name || i.podcd_name}`,
  });

  // Creating needs a cluster that answered its list.
  async function load() {
    if (await list.load()) create.disabled = false;
  }

  function columns() {
    return [
      { label: t("instance.name"), render: (i) => h("strong", { text: i.source_name || i.podcd_name }) },
      {
        label: t("instance.engine"),
        render: (i) => h("span", { "data-testid": "instance-replicas", text: `${i.source_podengine} × ${i.source_replicasetnum}` }),
      },
      { label: t("instance.image"), render: (i) => h("code", { text: i.pod_imagepath }) },
      {
        label: t("instance.state"),
        render: (i) => [
          badge(stateLabel(i), stateTone(i), "instance-state"),
          i.health_reason
            ? h("small", { class: "muted block", "data-testid": "instance-health", text: i.health_reason })
            : null,
          i.last_error ? h("small", { class: "muted block", text: i.last_error }) : null,
        ],
      },
      { label: t("instance.owner"), render: (i) => i.username },
      { label: t("instance.created"), render: (i) => i.created_at },
      {
        label: t("common.actions"),
        class: "actions",
        render: (i) => [
          button(t("instance.scale"), (e) => scale(i, e.currentTarget), { testid: "instance-scale" }),
          button(t("action.delete"), () => remove(i), { kind: "danger", testid: "instance-delete" }),
        ],
      },
    ];
  }

  async function catalogs() {
    const [components, labels] = await Promise.all([
      api.get(`/api/v1/centers/${seg(center.id)}/components`, { rows: 1000 }).then(
        (r) => r.rows,
        () => [],
      ),
      api.get("/api/v1/labels", { rows: 1000, labeltype: 1 }).then(
        (r) => r.rows,
        () => [],
      ),
    ]);
    return { components, labels };
  }

  async function createInstance() {
    const { components, labels } = await catalogs();
    const saved = await formDialog({
      title: t("instance.createTitle", { cluster: clusterSel.selectedOptions[0]?.text || "" }),
      testid: "instance-dialog",
      submitLabel: t("instance.createSubmit"),
      fields: instanceFields(components, labels),
      onInput: followChoices,
      onSubmit: (values) => api.post(`/api/v1/clusters/${seg(clusterSel.value)}/instances`, body(values)),
    });
    if (!saved) return;
    toast(t("toast.added", { name: saved.source_name }), "success");
    await load();
  }

  async function scale(instance) {
    const saved = await formDialog({
      title: t("instance.scaleTitle", { name: instance.source_name }),
      testid: "scale-dialog",
      fields: [
        {
          name: "replicas",
          label: t("instance.replicas"),
          type: "number",
          min: 1,
          required: true,
          value: instance.source_replicasetnum,
        },
      ],
      onSubmit: (values) =>
        api.post(`/api/v1/instances/${seg(instance.id)}/scale`, { replicas: Number(values.replicas) || values.replicas }),
    });
    if (saved) {
      toast(t("toast.saved", { name: saved.source_name }), "success");
      await load();
    }
  }

  async function remove(instance) {
    if (!(await confirmDialog(t("instance.confirmDelete", { name: instance.source_name }), t("action.delete")))) return;
    try {
      await api.del(`/api/v1/instances/${seg(instance.id)}`);
    } catch (error) {
      if (error.status === 404) return load();
      // The cluster did not answer (or refused): offer to forget the record, leaving the cluster as it is.
      if (!(await confirmDialog(t("instance.forceDelete", { error: error.message }), t("instance.force")))) return;
      try {
        await api.del(`/api/v1/instances/${seg(instance.id)}?force=true`);
      } catch (again) {
        return toastError(again);
      }
    }
    toast(t("toast.deleted", { name: instance.source_name }), "success");
    await load();
  }

  await load();
}
