// Instances (资源实例) of a cluster. The instances API is being built (issue 5): until it answers, the page says
// so; once `GET /api/v1/clusters/{id}/instances` exists the list below shows without a change here. The create form
// (engine, instance type, image, port mode, restart policy, node labels), scale and delete slot in next to it.

import { api, seg } from "../api.js";
import { t } from "../i18n.js";
import { badge, button, clear, emptyState, h, pageHeader, spinner, table } from "../ui.js";
import { listClusters, pickCenter } from "./common.js";

export async function render(ctx) {
  const head = h("div", {});
  const list = h("div", {}, spinner());
  ctx.view.append(head, list);
  const picked = await pickCenter(ctx, "instances", head);
  if (!picked) return clear(list);
  const { center } = picked;
  const create = button(t("instance.create"), null, {
    kind: "primary",
    disabled: true,
    title: t("instance.coming"),
    testid: "instance-create",
  });
  head.prepend(pageHeader(t("instance.title", { center: center.name }), create));
  const clusters = await listClusters(center.id);
  if (!clusters.length) return clear(list, emptyState(t("cluster.none")));
  const clusterSel = h(
    "select",
    { id: "inst-cluster", "data-testid": "instance-cluster", onchange: () => load() },
    clusters.map((c) => h("option", { value: c.id, text: c.name })),
  );
  head.append(
    h("div", { class: "center-picker" }, h("label", { for: "inst-cluster", text: t("component.cluster") }), clusterSel),
  );

  async function load() {
    clear(list, spinner());
    try {
      const { rows } = await api.get(`/api/v1/clusters/${seg(clusterSel.value)}/instances`, { rows: 1000 });
      clear(list, table(columns(), rows, { empty: t("instance.none"), testid: "instances-table" }));
    } catch (error) {
      if (error.missingRoute) return clear(list, emptyState(t("instance.coming")));
      clear(list, h("p", { class: "notice notice-error", role: "alert", text: error.message }));
    }
  }

  const columns = () => [
    { label: t("instance.name"), render: (i) => h("strong", { text: i.source_name || i.podcd_name }) },
    { label: t("instance.engine"), render: (i) => `${i.source_podengine} × ${i.source_replicasetnum}` },
    { label: t("instance.image"), render: (i) => h("code", { text: i.pod_imagepath }) },
    { label: t("instance.state"), render: (i) => badge(i.state_text || i.state, i.last_error ? "error" : "neutral") },
    { label: t("instance.owner"), render: (i) => i.username },
    { label: t("instance.created"), render: (i) => i.created_at },
  ];

  await load();
}
