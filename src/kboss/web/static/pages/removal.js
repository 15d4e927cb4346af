// Removing a worker (DELETE /api/v1/clusters/{id}/workers/{device}) or a whole cluster (DELETE
// /api/v1/clusters/{id}): each confirmed first, each answered 202 with an operation whose steps and live log open on
// `#/operations/<id>`, as building does. A removal refused or failed for a reason force overrides (a drain blocked
// by a disruption budget, instances still in the cluster) says why and offers the forced removal, confirmed again.

import { api, seg } from "../api.js";
import { t } from "../i18n.js";
import { busy, confirmDialog, formDialog, h, toast, toastError } from "../ui.js";

const REMOVALS = ["remove_worker", "remove_cluster"];

// An operation answered 202: say so and open its page (steps and live log). Also used by the board's drain.
export function openOperation(ctx, op) {
  toast(t("cluster.opStarted"), "success");
  ctx.go(`/operations/${seg(op.id)}`);
  return op;
}

const workerPath = (clusterId, deviceId) => `/api/v1/clusters/${seg(clusterId)}/workers/${seg(deviceId)}`;
const clusterPath = (clusterId) => `/api/v1/clusters/${seg(clusterId)}`;
// Only `force=true` is ever sent: leaving it out is the API's default (no force).
const forceQuery = (force) => (force ? { force: "true" } : undefined);

// The workers of a cluster a removal may take: its devices other than the control plane.
async function workersOf(center, cluster) {
  const { rows } = await api.get(`/api/v1/centers/${seg(center.id)}/devices`, { rows: 1000 });
  return rows.filter((d) => d.clusterid === cluster.id && d.role !== "master" && d.id !== cluster.controllerid);
}

export async function removeWorker(ctx, center, cluster) {
  let workers;
  try {
    workers = await workersOf(center, cluster);
  } catch (error) {
    return toastError(error);
  }
  if (!workers.length) return toast(t("cluster.noWorkers"), "warn");
  await formDialog({
    title: t("cluster.removeWorkerTitle", { name: cluster.name }),
    testid: "remove-worker-dialog",
    submitLabel: t("cluster.remove"),
    fields: [
      {
        name: "device_id",
        label: t("cluster.worker"),
        type: "select",
        required: true,
        options: workers.map((d) => [d.id, `${d.name} (${d.ip})`]),
      },
      { name: "force", label: t("cluster.force"), type: "checkbox", hint: t("cluster.forceHint") },
    ],
    extra: h("p", { class: "notice notice-warn", "data-testid": "remove-worker-note", text: t("cluster.removeWorkerNote") }),
    onSubmit: async (values) =>
      openOperation(ctx, await api.del(workerPath(cluster.id, values.device_id), forceQuery(values.force))),
  });
}

export async function removeCluster(ctx, cluster, btn) {
  if (!(await confirmDialog(t("cluster.confirmRemove", { name: cluster.name }), t("cluster.removeCluster")))) return;
  try {
    return openOperation(ctx, await busy(btn, () => api.del(clusterPath(cluster.id))));
  } catch (error) {
    // `conflict`: instances are still there (another operation running is `operation_conflict`: no force for that).
    if (error.code !== "conflict") return toastError(error);
    if (!(await confirmDialog(t("cluster.forceQuestion", { message: error.message }), t("cluster.forceRemove")))) return;
  }
  try {
    return openOperation(ctx, await busy(btn, () => api.del(clusterPath(cluster.id), forceQuery(true))));
  } catch (error) {
    toastError(error);
  }
}

// A failed, unforced removal can be started again with force (from the operation's page).
export const canForce = (op) => REMOVALS.includes(op.kind) && !op.params?.force && Boolean(op.cluster_id);

export async function forceRemoval(ctx, op, btn) {
  if (!(await confirmDialog(t("op.forceQuestion"), t("cluster.forceRemove")))) return;
  const path = op.kind === "remove_worker" ? workerPath(op.cluster_id, op.device_ids[0]) : clusterPath(op.cluster_id);
  try {
    openOperation(ctx, await busy(btn, () => api.del(path, forceQuery(true))));
  } catch (error) {
    toastError(error);
  }
}
