// The audit trail (审计日志), for an org's admins: who did what to which record, when, from where, how it ended;
// newest first, filtered by action prefix, actor and outcome, paged by the API (GET /api/v1/audit).

import { t } from "../i18n.js";
import { badge, button, dash, emptyState, h, pageHeader, spinner } from "../ui.js";
import { listPage } from "./list.js";

const PAGE_ROWS = 50;
const OUTCOME_KIND = { ok: "ok", refused: "warn", failed: "error" };
const ACTIONS = ["", "api.write", "auth.", "operation.", "secret.reveal", "site.call", "user.admin"];

const outcomeBadge = (outcome) =>
  badge(t(`audit.outcome.${outcome}`, { fallback: outcome }), OUTCOME_KIND[outcome] || "neutral", `audit-${outcome}`);

// What was done: the action's words, and for a write its method and route template.
function what(e) {
  const words = t(`audit.action.${e.action}`, { fallback: e.action });
  const route = e.detail && e.detail.route ? `${e.detail.method || ""} ${e.detail.route}`.trim() : "";
  return h("span", {}, words, route ? h("code", { class: "muted", text: ` ${route}` }) : null);
}

const target = (e) => (e.target_id ? `${e.target_type}:${e.target_id}` : dash(e.target_type));

function columns() {
  return [
    { label: t("audit.at"), render: (e) => e.at.slice(0, 19).replace("T", " ") },
    { label: t("audit.actor"), render: (e) => dash(e.actor) },
    { label: t("audit.what"), render: what },
    { label: t("audit.target"), render: target },
    { label: t("audit.address"), render: (e) => dash(e.address) },
    { label: t("audit.outcome"), render: (e) => h("span", {}, outcomeBadge(e.outcome), e.code ? ` ${e.code}` : "") },
  ];
}

const select = (id, options, onchange) =>
  h(
    "select",
    { id, "data-testid": id, onchange },
    options.map(([value, text]) => h("option", { value, text })),
  );

export async function render(ctx) {
  if (!ctx.isAdmin) {
    ctx.view.append(pageHeader(t("nav.audit")), emptyState(t("audit.adminsOnly")));
    return;
  }
  let page = 1;
  const reload = () => {
    page = 1;
    show();
  };
  const actionNames = ACTIONS.map((a) => [a, a ? t(`audit.action.${a}`, { fallback: a }) : t("audit.all")]);
  const outcomeNames = Object.keys(OUTCOME_KIND).map((o) => [o, t(`audit.outcome.${o}`)]);
  const action = select("audit-action", actionNames, reload);
  const outcome = select("audit-outcome", [["", t("audit.all")], ...outcomeNames], reload);
  const actor = h("input", { id: "audit-actor", "data-testid": "audit-actor", type: "search", onchange: reload });
  const label = (id, key) => h("label", { for: id, text: t(key) });
  const pager = h("div", { class: "toolbar" });
  const host = h("div", {}, spinner());
  ctx.view.append(
    pageHeader(t("nav.audit")),
    h(
      "div",
      { class: "filters" },
      h("span", { class: "inline-field" }, label("audit-action", "audit.action"), action),
      h("span", { class: "inline-field" }, label("audit-actor", "audit.actor"), actor),
      h("span", { class: "inline-field" }, label("audit-outcome", "audit.outcome"), outcome),
    ),
    h("p", { class: "muted", text: t("audit.explain") }),
    host,
    pager,
  );
  const list = listPage(host, {
    path: "/api/v1/audit",
    query: () => ({ page, rows: PAGE_ROWS, action: action.value, actor: actor.value.trim(), outcome: outcome.value }),
    columns,
    empty: t("audit.none"),
    testid: "audit-table",
    rowTestid: (e) => `audit-${e.id}`,
  });

  // Pages of PAGE_ROWS, newest first: "older" while a page comes back full.
  async function show() {
    const rows = await list.load();
    const more = rows && rows.length === PAGE_ROWS;
    const turn = (by) => () => {
      page += by;
      show();
    };
    pager.replaceChildren(
      page > 1 ? button(t("audit.newer"), turn(-1), { testid: "audit-newer" }) : "",
      more ? button(t("audit.older"), turn(1), { testid: "audit-older" }) : "",
    );
  }
  await show();
}
