// Clusters (算力集群) of one center: list, import an existing cluster by its kubeconfig, rename and dates.
// Building a cluster, adding workers and the live node/pod boards arrive with the operations engine; their
// buttons are here already, disabled and saying so, so the layout does not move when they land.

import { api, seg } from "../api.js";
import { t } from "../i18n.js";
import { badge, button, clear, dash, formDialog, h, pageHeader, spinner, table, toast } from "../ui.js";
import { pickCenter } from "./common.js";

const coming = (label, testid) => button(label, null, { disabled: true, title: t("cluster.coming"), testid });

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

export async function render(ctx) {
  const head = h("div", {});
  const list = h("div", {}, spinner());
  ctx.view.append(head, list);
  const picked = await pickCenter(ctx, "clusters", head);
  if (!picked) return clear(list);
  const { center } = picked;
  const tools = ctx.isAdmin
    ? [
        button(t("cluster.import"), () => importCluster(), { kind: "primary", testid: "cluster-import" }),
        coming(t("cluster.create"), "cluster-create"),
      ]
    : [];
  head.prepend(pageHeader(t("cluster.title", { center: center.name }), tools));
  head.append(h("p", { class: "notice", "data-testid": "ops-coming" }, t("cluster.comingNotice")));

  async function load() {
    try {
      const { rows } = await api.get(`/api/v1/centers/${seg(center.id)}/clusters`, { rows: 1000 });
      clear(
        list,
        table(columns(), rows, {
          empty: t("cluster.none"),
          testid: "clusters-table",
          rowTestid: (c) => `cluster-${c.name}`,
        }),
      );
    } catch (error) {
      clear(list, h("p", { class: "notice notice-error", role: "alert", text: error.message }));
    }
  }

  function columns() {
    return [
      { label: t("cluster.name"), render: (c) => h("strong", { text: c.name }) },
      { label: t("cluster.type"), render: (c) => c.clustertype_text },
      { label: t("cluster.origin"), render: (c) => t(c.origin === "imported" ? "cluster.imported" : "cluster.built") },
      {
        label: t("cluster.ready"),
        render: (c) => (c.ready ? badge(t("cluster.isReady"), "ok") : badge(t("cluster.installing"), "warn")),
      },
      { label: t("cluster.controller"), render: (c) => dash(c.controllerid_text) },
      { label: t("cluster.period"), render: (c) => `${dash(c.enable_date)} ~ ${dash(c.export_date)}` },
      {
        label: t("common.actions"),
        class: "actions",
        render: (c) => [
          ctx.isAdmin ? button(t("action.edit"), () => edit(c), { testid: "cluster-edit" }) : null,
          h("a", { class: "btn btn-link", href: `#/components/${seg(center.id)}` }, t("nav.components")),
          coming(t("cluster.board"), "cluster-board"),
          ctx.isAdmin ? coming(t("cluster.addWorker"), "cluster-add-worker") : null,
        ],
      },
    ];
  }

  async function importCluster() {
    const saved = await formDialog({
      title: t("cluster.import"),
      testid: "cluster-dialog",
      submitLabel: t("cluster.importSubmit"),
      fields: [
        { name: "name", label: t("cluster.name"), required: true },
        kubeconfigFile(),
        {
          name: "kubeconfig",
          label: t("cluster.kubeconfig"),
          type: "textarea",
          rows: 8,
          required: true,
          wide: true,
          placeholder: "apiVersion: v1\nkind: Config\n...",
        },
        { name: "enable_date", label: t("cluster.enable_date"), type: "date" },
        { name: "export_date", label: t("cluster.export_date"), type: "date" },
      ],
      onSubmit: (values) => api.post("/api/v1/clusters/import", { ...values, cpcid: center.id }),
    });
    if (!saved) return;
    toast(t("toast.added", { name: saved.name }), "success");
    // Importing does not need the API server to answer; tell the operator whether it does.
    const reach = saved.reachability;
    if (reach)
      toast(
        t(reach.reachable ? "cluster.reachable" : "cluster.unreachable", { detail: reach.detail }),
        reach.reachable ? "info" : "warn",
      );
    await load();
  }

  async function edit(cluster) {
    const saved = await formDialog({
      title: t("cluster.edit", { name: cluster.name }),
      testid: "cluster-dialog",
      fields: [
        { name: "name", label: t("cluster.name"), required: true, value: cluster.name },
        { name: "enable_date", label: t("cluster.enable_date"), type: "date", value: cluster.enable_date },
        { name: "export_date", label: t("cluster.export_date"), type: "date", value: cluster.export_date },
      ],
      onSubmit: (values) => api.patch(`/api/v1/clusters/${seg(cluster.id)}`, values),
    });
    if (saved) {
      toast(t("toast.saved", { name: saved.name }), "success");
      await load();
    }
  }

  await load();
}
