// Helpers shared by the pages of one center (devices, clusters, components, calculator).

import { api, seg } from "../api.js";
import { t } from "../i18n.js";
import { busy, confirmDialog, emptyState, h, toast, toastError } from "../ui.js";

const REMEMBER = "kboss.center";

// The center a page shows: the one in the path, else the last one used, else the first. Renders a picker that
// navigates to `#/<base>/<id>`. Answers null (after rendering an empty state) when there is no center yet.
export async function pickCenter(ctx, base, host) {
  const { rows } = await api.get("/api/v1/centers", { rows: 1000 });
  if (!rows.length) {
    host.append(
      emptyState(
        t("center.none"),
        h("a", { class: "btn btn-primary", href: "#/centers", "data-testid": "go-centers" }, t("center.add")),
      ),
    );
    return null;
  }
  const wanted = ctx.id || localStorage.getItem(REMEMBER);
  let center = rows.find((c) => c.id === wanted);
  if (!center) center = rows[0];
  localStorage.setItem(REMEMBER, center.id);
  const select = h(
    "select",
    { id: "center-picker", "data-testid": "center-picker", onchange: () => ctx.go(`/${base}/${seg(select.value)}`) },
    rows.map((c) => h("option", { value: c.id, text: c.simulated ? `${c.name} (${t("center.simulated")})` : c.name })),
  );
  select.value = center.id;
  host.append(
    h("div", { class: "center-picker" }, h("label", { for: "center-picker", text: t("center.current") }), select),
  );
  return { center, centers: rows };
}

export async function listClusters(cpcid) {
  const { rows } = await api.get(`/api/v1/centers/${seg(cpcid)}/clusters`, { rows: 1000 });
  return rows;
}

// Leave out the named fields when blank: for secrets on edit, "not sent" means "keep the stored one".
export function withoutBlank(values, names) {
  const out = { ...values };
  for (const name of names) if (out[name] === "") delete out[name];
  return out;
}

export const remember = (id) => localStorage.setItem(REMEMBER, id);

// The delete button of a list row: confirm, delete with the button busy, say so, reload; errors as a toast.
export async function confirmAndDelete({ question, name, path, button, reload }) {
  if (!(await confirmDialog(question, t("action.delete")))) return;
  try {
    await busy(button, () => api.del(path));
    toast(t("toast.deleted", { name }), "success");
    await reload();
  } catch (error) {
    toastError(error);
  }
}
