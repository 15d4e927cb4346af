// A provider's customers (客户), for its admins: the list with each one's balance, a new customer with its first
// admin, top-ups, and one customer's ledger (`#/customers/<orgid>`); the publication of centers to them is a
// dialog of its own (pages/publish.js). A customer's own account page is pages/account.js.

import { api, seg } from "../api.js";
import { t } from "../i18n.js";
import { button, dash, emptyState, formDialog, h, pageHeader, spinner, toast, toastError } from "../ui.js";
import { accountView, money } from "./account.js";
import { listPage } from "./list.js";
import { openPublish } from "./publish.js";

const customerFields = () => [
  { name: "name", label: t("customer.name"), required: true },
  { name: "username", label: t("customer.username"), required: true, autocomplete: "off" },
  {
    name: "password",
    label: t("customer.password"),
    type: "password",
    required: true,
    autocomplete: "new-password",
    hint: t("customer.passwordHint"),
  },
];

const topUpFields = () => [
  { name: "amount", label: t("customer.amount"), required: true, inputmode: "decimal", hint: t("customer.amountHint") },
  { name: "note", label: t("customer.note"), wide: true },
];

// The top-up dialog; answers the account afterwards (its new balance), or null when cancelled.
async function topUp(customer) {
  const account = await formDialog({
    title: t("customer.topUpTitle", { name: customer.name }),
    fields: topUpFields(),
    submitLabel: t("customer.topUp"),
    testid: "topup-dialog",
    onSubmit: (values) => api.post(`/api/v1/accounts/${seg(customer.id)}/credit`, values),
  });
  if (account) toast(t("customer.toppedUp", { name: account.name, balance: money(account.balance) }), "success");
  return account;
}

// One customer's balance and ledger, with its top-up.
async function ledgerPage(ctx) {
  const host = h("div", {}, spinner());
  const head = h("div", {});
  ctx.view.append(head, host);
  let customer;
  try {
    customer = await api.get(`/api/v1/customers/${seg(ctx.id)}`);
  } catch (error) {
    head.append(pageHeader(t("customer.ledger")));
    host.replaceChildren(emptyState(error.message, h("a", { class: "btn", href: "#/customers" }, t("customer.back"))));
    return;
  }
  const view = accountView(host, customer.id);
  const again = async () => (await topUp(customer)) && view.reload();
  head.append(
    pageHeader(
      t("customer.ledgerTitle", { name: customer.name }),
      h("a", { class: "btn btn-secondary", href: "#/customers", "data-testid": "customer-back" }, t("customer.back")),
      button(t("customer.topUp"), again, { kind: "primary", testid: "customer-topup" }),
    ),
  );
  await view.show();
}

export async function render(ctx) {
  if (!ctx.isAdmin) {
    ctx.view.append(pageHeader(t("nav.customers")), emptyState(t("customer.adminsOnly")));
    return;
  }
  if (ctx.id) return ledgerPage(ctx);
  let balances = new Map();
  const host = h("div", {}, spinner());
  ctx.view.append(
    pageHeader(
      t("nav.customers"),
      button(t("publish.open"), () => openPublish(), { testid: "publish-open" }),
      button(t("customer.add"), add, { kind: "primary", testid: "customer-add" }),
    ),
    h("p", { class: "muted", text: t("customer.explain") }),
    host,
  );
  const list = listPage(host, {
    path: "/api/v1/customers",
    columns,
    empty: t("customer.none"),
    testid: "customers-table",
    rowTestid: (c) => `customer-${c.name}`,
    errorTestid: "customers-error",
  });

  const balance = (c) => (balances.has(c.id) ? money(balances.get(c.id)) : "—");

  function columns() {
    return [
      { label: t("customer.name"), render: (c) => h("strong", { text: c.name }) },
      { label: t("customer.created"), render: (c) => dash(c.created_at).slice(0, 19).replace("T", " ") },
      {
        label: t("customer.balance"),
        render: (c) => h("span", { "data-testid": "customer-balance", text: balance(c) }),
      },
      {
        label: t("common.actions"),
        class: "actions",
        render: (c) => [
          button(t("customer.topUp"), async () => (await topUp(c)) && refresh(), { testid: "customer-topup" }),
          h(
            "a",
            { class: "btn btn-link", href: `#/customers/${seg(c.id)}`, "data-testid": "customer-ledger" },
            t("customer.ledger"),
          ),
        ],
      },
    ];
  }

  // The customers, with the balances of /api/v1/accounts merged in by id (a failure there leaves them blank).
  async function refresh() {
    try {
      const { rows } = await api.get("/api/v1/accounts");
      balances = new Map(rows.map((a) => [a.orgid, a.balance]));
    } catch (error) {
      balances = new Map();
      toastError(error);
    }
    await list.load();
  }

  async function add() {
    const made = await formDialog({
      title: t("customer.addTitle"),
      fields: customerFields(),
      submitLabel: t("customer.add"),
      testid: "customer-dialog",
      onSubmit: (values) => api.post("/api/v1/customers", values),
    });
    if (!made) return;
    toast(t("customer.added", { name: made.name, admin: made.admin }), "success");
    await refresh();
  }

  await refresh();
}
