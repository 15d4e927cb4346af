// The live boards of one cluster: nodes (admins: labels, free cpu/memory/gpu, label/unlabel from the catalog,
// cordon/uncordon, drain) and pods, from GET /api/v1/clusters/{id}/nodes and /pods, refreshed every 10 s until the answered stop function
// is called (the clusters page calls it when it is left). Errors, e.g. a cluster that does not answer, are shown
// in place of the table and the refresh goes on. Cordon and uncordon answer at once; a drain is an operation
// (POST .../nodes/{node}/drain, 202) whose steps and live log open on `#/operations/<id>`, as removals do.

import { api, seg } from "../api.js";
import { t } from "../i18n.js";
import {
  badge,
  busy,
  button,
  clear,
  confirmDialog,
  dash,
  errorNotice,
  formDialog,
  h,
  spinner,
  table,
  toast,
  toastError,
} from "../ui.js";
import { openOperation } from "./removal.js";

const BOARD_SECONDS = 10;

export function openBoard(boardHost, cluster, { ctx, closeHref }) {
  let timer = null;
  let stopped = false;
  const status = h("span", { class: "muted", "data-testid": "board-status", "aria-live": "polite" });
  const nodes = h("div", { "data-testid": "node-board" }, spinner());
  // A failed node action (a drain refused because the cluster is busy...) stays on screen across refreshes until
  // the next action: its message can be too long to read in a toast.
  const actionError = h("p", { class: "notice notice-error", role: "alert", "data-testid": "node-action-error", hidden: true });
  const pods = h("div", { "data-testid": "pod-board" }, spinner());
  const refresh = button(t("board.refresh"), () => tick(), { testid: "board-refresh" });
  const close = h("a", { class: "btn btn-link", href: closeHref, "data-testid": "board-close" }, t("action.close"));
  clear(
    boardHost,
    h("div", { class: "page-head" }, h("h2", { text: t("board.title", { name: cluster.name }) }), h("div", { class: "toolbar" }, status, refresh, close)),
    ctx.isAdmin ? [h("h3", { text: t("board.nodes") }), actionError, nodes] : null,
    h("h3", { text: t("board.pods") }),
    pods,
  );
  const base = `/api/v1/clusters/${seg(cluster.id)}`;

  async function show(host, path, render) {
    try {
      const { rows } = await api.get(path);
      if (!stopped) clear(host, render(rows));
      return true;
    } catch (error) {
      if (!stopped) clear(host, errorNotice(error.message, "board-error"));
      return false;
    }
  }

  async function tick() {
    clearTimeout(timer);
    await Promise.all([
      ctx.isAdmin ? show(nodes, `${base}/nodes`, nodeTable) : null,
      show(pods, `${base}/pods`, podTable),
    ]);
    if (stopped) return;
    status.textContent = t("board.updated", { time: new Date().toLocaleTimeString(), n: BOARD_SECONDS });
    timer = setTimeout(tick, BOARD_SECONDS * 1000);
  }

  const nodeTable = (rows) =>
    table(
      [
        { label: t("board.node"), render: (n) => [h("strong", { text: n.node_name }), h("small", { class: "muted block", text: n.node_role })] },
        { label: t("board.status"), render: (n) => badge(n.node_status, /就绪|Ready/.test(n.node_status) && n.node_schedulable ? "ok" : "warn") },
        { label: t("board.ip"), render: (n) => h("code", { text: n.node_internalip }) },
        {
          label: t("board.available"),
          render: (n) =>
            h(
              "span",
              { "data-testid": "node-available" },
              `CPU ${n.available_cpu} · ${t("type.memory")} ${n.available_memory} · GPU ${n.available_gpu}${n.node_gpu_model ? ` (${n.node_gpu_model})` : ""}`,
            ),
        },
        { label: t("board.usage"), render: (n) => `CPU ${n.node_cpurate} · ${t("type.memory")} ${n.node_memrate} · GPU ${n.node_gpu}` },
        { label: t("board.labels"), render: (n) => labelChips(n) },
        {
          label: t("common.actions"),
          class: "actions",
          render: (n) => (ctx.isAdmin ? nodeActions(n) : null),
        },
      ],
      rows,
      { empty: t("board.noNodes"), testid: "nodes-table", rowTestid: (n) => `node-${n.node_name}` },
    );

  const labelChips = (n) =>
    h(
      "ul",
      { class: "chips" },
      (n.node_labels || []).map((label) =>
        h(
          "li",
          { class: "chip", "data-testid": "node-label-chip" },
          h("code", { text: label }),
          ctx.isAdmin
            ? h(
                "button",
                {
                  type: "button",
                  class: "chip-x",
                  "aria-label": t("board.unlabel", { label }),
                  title: t("board.unlabel", { label }),
                  "data-testid": "node-unlabel",
                  onclick: () => unlabelNode(n, label),
                },
                "×",
              )
            : null,
        ),
      ),
    );

  const nodeActions = (n) => [
    button(t("board.label"), () => labelNode(n), { testid: "node-label" }),
    n.node_schedulable
      ? [
          button(t("board.cordon"), (e) => schedule(n, "cordon", e.currentTarget), { testid: "node-cordon" }),
          button(t("board.drain"), (e) => drain(n, e.currentTarget), { kind: "danger", testid: "node-drain" }),
        ]
      : [
          button(t("board.uncordon"), (e) => schedule(n, "uncordon", e.currentTarget), { testid: "node-uncordon" }),
          // A cordoned node may still hold pods (a drain that was blocked): draining it again is offered too.
          button(t("board.drain"), (e) => drain(n, e.currentTarget), { kind: "danger", testid: "node-drain" }),
        ],
  ];

  function showActionError(error) {
    actionError.textContent = error.message;
    actionError.hidden = false;
  }

  async function schedule(node, state, btn) {
    const name = node.node_name;
    const question = t(state === "cordon" ? "board.confirmCordon" : "board.confirmUncordon", { node: name });
    if (!(await confirmDialog(question, t(`board.${state}`)))) return;
    actionError.hidden = true;
    try {
      await busy(btn, () => api.post(`${base}/nodes/${seg(name)}/schedule`, { state }));
      toast(t(`board.${state}ed`, { node: name }), "success");
    } catch (error) {
      showActionError(error);
    }
    tick();
  }

  async function drain(node, btn) {
    const name = node.node_name;
    if (!(await confirmDialog(t("board.confirmDrain", { node: name }), t("board.drain")))) return;
    actionError.hidden = true;
    try {
      openOperation(ctx, await busy(btn, () => api.post(`${base}/nodes/${seg(name)}/drain`)));
    } catch (error) {
      // Refused before it started (another operation holds the cluster, the node is gone): said here.
      showActionError(error);
      tick();
    }
  }

  async function labelNode(node) {
    let labels = [];
    try {
      ({ rows: labels } = await api.get("/api/v1/labels", { rows: 1000, labeltype: 1 }));
    } catch (error) {
      return toastError(error);
    }
    const texts = labels.map((l) => `${l.label_key}${l.symbol}${l.label_value}`);
    if (!texts.length) return toast(t("board.noCatalog"), "warn");
    const done = await formDialog({
      title: t("board.labelTitle", { node: node.node_name }),
      testid: "node-label-dialog",
      fields: [{ name: "label", label: t("label.text"), type: "select", options: texts.map((x) => [x, x]) }],
      onSubmit: (values) => api.put(`${base}/nodes/${seg(node.node_name)}/labels`, { label: values.label }),
    });
    if (done) {
      toast(t("board.labelled", { node: node.node_name, label: done.label }), "success");
      tick();
    }
  }

  async function unlabelNode(node, label) {
    const key = label.split("=")[0];
    if (!(await confirmDialog(t("board.confirmUnlabel", { label, node: node.node_name }), t("action.confirm")))) return;
    try {
      await api.del(`${base}/nodes/${seg(node.node_name)}/labels/${key.split("/").map(seg).join("/")}`);
      toast(t("board.unlabelled", { node: node.node_name, label }), "success");
    } catch (error) {
      return clear(nodes, errorNotice(error.message, "board-error"));
    }
    tick();
  }

  const podTable = (rows) =>
    table(
      [
        { label: t("board.pod"), render: (p) => [h("strong", { text: p.pod_name }), h("small", { class: "muted block", text: p.pod_namespace })] },
        { label: t("board.ready"), render: (p) => `${p.pod_ready}` },
        { label: t("board.status"), render: (p) => badge(p.pod_running, p.pod_running === "Running" ? "ok" : "warn") },
        { label: t("board.restarts"), render: (p) => String(p.pod_restart) },
        { label: t("board.node"), render: (p) => p.pod_node },
        { label: t("board.ip"), render: (p) => h("code", { text: p.pod_ip }) },
        { label: t("board.limits"), render: (p) => `CPU ${p.pod_cpu_limit} · ${t("type.memory")} ${p.pod_memory_limit} · GPU ${p.pod_gpu_limit}` },
        { label: t("board.instance"), render: (p) => dash(p.source_name) },
        { label: t("board.age"), render: (p) => p.pod_age },
      ],
      rows,
      { empty: t("board.noPods"), testid: "pods-table" },
    );

  tick();
  boardHost.scrollIntoView?.({ block: "nearest" });
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
