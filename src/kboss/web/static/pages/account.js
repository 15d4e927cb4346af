// An account's balance and ledger (账户): a customer's own page (我的账户), and the same view of one customer for
// its provider's admins (`#/customers/<orgid>`, pages/customers.js). Amounts are the API's, always two decimals.

import { api, seg } from "../api.js";
import { t } from "../i18n.js";
import { badge, button, clear, dash, errorNotice, h, pageHeader, spinner, table } from "../ui.js";

const PAGE_ROWS = 20;
const KIND = { credit: "ok", charge: "warn", refund: "info" };

export const money = (amount) => t("money.amount", { amount });

// What an entry paid for: an order and its instance, when it has them.
const paidFor = (e) => [e.order_id, e.instance_id].filter(Boolean).join(" · ") || "—";

function columns() {
  return [
    { label: t("ledger.at"), render: (e) => e.at.slice(0, 19).replace("T", " ") },
    { label: t("ledger.kind"), render: (e) => badge(t(`ledger.kind.${e.kind}`, { fallback: e.kind }), KIND[e.kind]) },
    { label: t("ledger.amount"), render: (e) => h("strong", { text: money(e.amount) }) },
    { label: t("ledger.for"), render: (e) => h("code", { text: paidFor(e) }) },
    { label: t("ledger.note"), render: (e) => dash(e.note) },
  ];
}

// The balance over the ledger of `orgid`, paged newest first. Answers `reload()`, which reads both again (after a
// top-up) and goes back to the newest page.
export function accountView(host, orgid) {
  const base = `/api/v1/accounts/${seg(orgid)}`;
  const balance = h("strong", { class: "balance", "data-testid": "account-balance" });
  const org = h("dd", { "data-testid": "account-org" });
  const summary = h(
    "dl",
    { class: "facts card" },
    h("dt", { text: t("account.org") }),
    org,
    h("dt", { text: t("account.balance") }),
    h("dd", {}, balance),
  );
  const entries = h("div", {}, spinner());
  const pager = h("div", { class: "toolbar pager" });
  clear(host, summary, h("h2", { text: t("customer.ledger") }), entries, pager);
  let page = 1;

  async function readBalance() {
    try {
      const account = await api.get(base);
      org.textContent = account.name;
      balance.textContent = money(account.balance);
    } catch (error) {
      balance.textContent = error.message;
    }
  }

  // The page's entries (the API's `total` says how many pages there are), or its error in their place.
  async function readLedger() {
    try {
      const { total, rows } = await api.get(`${base}/ledger`, { page, rows: PAGE_ROWS });
      const testids = { empty: t("ledger.none"), testid: "ledger-table", rowTestid: (e) => `ledger-${e.kind}` };
      clear(entries, table(columns(), rows, testids));
      return total;
    } catch (error) {
      clear(entries, errorNotice(error.message, "ledger-error"));
      return null;
    }
  }

  async function show() {
    const [, total] = await Promise.all([readBalance(), readLedger()]);
    const pages = Math.max(1, Math.ceil((total || 0) / PAGE_ROWS));
    const turn = (by) => () => {
      page += by;
      show();
    };
    pager.replaceChildren(
      total ? h("span", { class: "muted", text: t("ledger.count", { total, page, pages }) }) : "",
      page > 1 ? button(t("ledger.newer"), turn(-1), { testid: "ledger-newer" }) : "",
      page < pages ? button(t("ledger.older"), turn(1), { testid: "ledger-older" }) : "",
    );
  }

  const reload = () => {
    page = 1;
    return show();
  };
  return { show, reload };
}

export async function render(ctx) {
  const host = h("div", {}, spinner());
  ctx.view.append(pageHeader(t("nav.account")), h("p", { class: "muted", text: t("account.explain") }), host);
  await accountView(host, ctx.me.orgid).show();
}
