// Helpers shared by the pages of one center (devices, clusters, instances, components, calculator) and the
// centers page.

import { api, seg } from "../api.js";
import { t } from "../i18n.js";
import { clear, emptyState, h, spinner } from "../ui.js";

const REMEMBER = "kboss.center";

// The center a page shows: the one in the path, else the last one used, else the first. Renders a picker that
// navigates to `#/<base>/<id>`. Answers the center, or null (after rendering an empty state) when there is none yet.
async function pickCenter(ctx, base, host) {
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
  return center;
}

// The opening of a page of one center: a head (the picker; the page puts its title and tools in it) over a body
// that shows a spinner until the page fills it. Answers {head, body, center}, or null when there is no center.
export async function openCenterPage(ctx, base) {
  const head = h("div", {});
  const body = h("div", {}, spinner());
  ctx.view.append(head, body);
  const center = await pickCenter(ctx, base, head);
  if (!center) {
    clear(body);
    return null;
  }
  return { head, body, center };
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
