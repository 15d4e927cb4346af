// Clusters (算力集群) of one center: list, import an existing cluster by its kubeconfig, rename and dates;
// build a cluster from an idle device and add a worker (each answers 202 with an operation, followed live on
// `#/operations/<id>`); remove a worker or the whole cluster (pages/removal.js); the live node and pod boards of one cluster (`?board=<id>`, refreshed every 10 s
// while shown) with node label/unlabel from the label catalog.

import { api, seg } from "../api.js";
import { t } from "../i18n.js";
import { badge, button, dash, formDialog, h, pageHeader, toast, toastError } from "../ui.js";
import { openBoard } from "./board.js";
import { openCenterPage } from "./common.js";
import { listPage } from "./list.js";
import { removeCluster, removeWorker } from "./removal.js";

function kubeconfigFile() {
  // Reading the file in the browser: the kubeconfig goes to the API as text, like a paste.
  const input = h("input", {
    type: "file",
    id: "kubeconfig-file",
    "data-testid": "kubeconfig-file",
    onchange: async () => {
      const file = input.files[0];
      if (file) input.form.elements.namedItem("kubeconfig").value = await file.text();
    },
  });
  return h(
    "div",
    { class: "field field-wide" },
    h("label", { for: "kubeconfig-file", text: t("cluster.kubeconfigFile") }),
    input,
  );
}

// A cluster's fields, blank for a new one.
const nameField = (c = {}) => ({ name: "name", label: t("cluster.name"), required: true, value: c.name });
const dateFields = (c = {}) => [
  { name: "enable_date", label: t("cluster.enable_date"), type: "date", value: c.enable_date },
  { name: "export_date", label: t("cluster.export_date"), type: "date", value: c.export_date },
];
const kubeconfigText = () => ({
  name: "kubeconfig",
  label: t("cluster.kubeconfig"),
  type: "textarea",
  rows: 8,
  required: true,
  wide: true,
  placeholder: "apiVersion: v1\nkind: Config\n...",
});

export async function render(ctx) {
  const page = await openCenterPage(ctx, "clusters");
  if (!page) return;
  const { head, center } = page;
  const tools = ctx.isAdmin
    ? [
        button(t("cluster.import"), () => importCluster(), { kind: "primary", testid: "cluster-import" }),
        button(t("cluster.create"), (e) => createCluster(e.currentTarget), { testid: "cluster-create" }),
      ]
    : [];
  head.prepend(pageHeader(t("cluster.title", { center: center.name }), tools));
  const boardHost = h("section", { class: "board", "data-testid": "cluster-board-section" });
  ctx.view.append(boardHost);
  let stopBoard = () => {};
  const list = listPage(page.body, {
    path: `/api/v1/centers/${seg(center.id)}/clusters`,
    columns,
    empty: t("cluster.none"),
    testid: "clusters-table",
    rowTestid: (c) => `cluster-${c.name}`,
  });

  function clusterState(c) {
    if (c.state === "failed") {
      return h("span", { title: c.state_reason }, badge(t("cluster.failed"), "error"), " ", h("small", { text: c.state_reason }));
    }
    return c.ready === 1 ? badge(t("cluster.isReady"), "ok") : badge(t("cluster.installing"), "warn");
  }

  function columns() {
    return [
      { label: t("cluster.name"), render: (c) => h("strong", { text: c.name }) },
      { label: t("cluster.type"), render: (c) => c.clustertype_text },
      { label: t("cluster.origin"), render: (c) => t(c.origin === "imported" ? "cluster.imported" : "cluster.built") },
      {
        label: t("cluster.ready"),
        render: (c) => clusterState(c),
      },
      { label: t("cluster.controller"), render: (c) => dash(c.controllerid_text) },
      { label: t("cluster.period"), render: (c) => `${dash(c.enable_date)} ~ ${dash(c.export_date)}` },
      {
        label: t("common.actions"),
        class: "actions",
        render: (c) => [
          ctx.isAdmin ? button(t("action.edit"), () => edit(c), { testid: "cluster-edit" }) : null,
          h("a", { class: "btn btn-link", href: `#/components/${seg(center.id)}` }, t("nav.components")),
          h(
            "a",
            { class: "btn btn-secondary", href: boardHref(c), "data-testid": "cluster-board" },
            t("cluster.board"),
          ),
          h(
            "a",
            { class: "btn btn-link", href: `#/instances/${seg(center.id)}?cluster=${seg(c.id)}` },
            t("nav.instances"),
          ),
          ctx.isAdmin
            ? [
                button(t("cluster.addWorker"), (e) => addWorker(c, e.currentTarget), { testid: "cluster-add-worker" }),
                button(t("cluster.removeWorker"), () => removeWorker(ctx, center, c), {
                  testid: "cluster-remove-worker",
                }),
                button(t("cluster.removeCluster"), (e) => removeCluster(ctx, c, e.currentTarget), {
                  kind: "danger",
                  testid: "cluster-remove",
                }),
              ]
            : null,
        ],
      },
    ];
  }

  async function importCluster() {
    const dialog = {
      title: t("cluster.import"),
      testid: "cluster-dialog",
      submitLabel: t("cluster.importSubmit"),
      fields: [nameField(), kubeconfigFile(), kubeconfigText(), ...dateFields()],
      onSubmit: (values) => api.post("/api/v1/clusters/import", { ...values, cpcid: center.id }),
    };
    const saved = await list.save(dialog, { done: "toast.added" });
    // Importing does not need the API server to answer; tell the operator whether it does.
    const reach = saved?.reachability;
    if (!reach) return;
    const said = t(reach.reachable ? "cluster.reachable" : "cluster.unreachable", { detail: reach.detail });
    toast(said, reach.reachable ? "info" : "warn");
  }

  function edit(cluster) {
    return list.save({
      title: t("cluster.edit", { name: cluster.name }),
      testid: "cluster-dialog",
      fields: [nameField(cluster), ...dateFields(cluster)],
      onSubmit: (values) => api.patch(`/api/v1/clusters/${seg(cluster.id)}`, values),
    });
  }

  const boardHref = (c) => `#/clusters/${seg(center.id)}?board=${seg(c.id)}`;

  // Idle devices of this center (node_status "0"); building and joining take one of them.
  async function idleDevices() {
    const { rows } = await api.get(`/api/v1/centers/${seg(center.id)}/devices`, { rows: 1000 });
    return rows.filter((d) => String(d.node_status) === "0");
  }

  async function startOperation(path, values) {
    const op = await api.post(path, values);
    toast(t("cluster.opStarted"), "success");
    ctx.go(`/operations/${seg(op.id)}`);
    return op;
  }

  async function pickDevice(title, testid, extraFields, path) {
    let devices;
    try {
      devices = await idleDevices();
    } catch (error) {
      return toastError(error);
    }
    if (!devices.length) return toast(t("cluster.noIdle"), "warn");
    await formDialog({
      title,
      testid,
      submitLabel: t("cluster.start"),
      fields: [
        {
          name: "device_id",
          label: t("cluster.device"),
          type: "select",
          required: true,
          options: devices.map((d) => [d.id, `${d.name} (${d.ip})`]),
        },
        ...extraFields,
      ],
      onSubmit: (values) => {
        const filled = Object.fromEntries(Object.entries(values).filter(([, v]) => v !== ""));
        return startOperation(path, { ...filled, cpcid: center.id });
      },
    });
  }

  function createCluster() {
    return pickDevice(
      t("cluster.create"),
      "cluster-create-dialog",
      [nameField(), ...dateFields()],
      "/api/v1/clusters",
    );
  }

  function addWorker(cluster) {
    return pickDevice(
      t("cluster.addWorkerTitle", { name: cluster.name }),
      "add-worker-dialog",
      [],
      `/api/v1/clusters/${seg(cluster.id)}/workers`,
    );
  }

  const clusters = (await list.load()) || [];
  const boardId = ctx.query.get("board");
  const boardOf = boardId && clusters.find((c) => c.id === boardId);
  if (boardOf) stopBoard = openBoard(boardHost, boardOf, { ctx, closeHref: `#/clusters/${seg(center.id)}` });
  return () => stopBoard();
}
