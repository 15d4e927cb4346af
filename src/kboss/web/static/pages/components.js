// Components and prices (算力部件) of one center: stock and consumed per cluster (`import_export`), add (or add
// stock to an existing one with add_opt), change the price, delete. The price calculator is its own page.

import { api, seg } from "../api.js";
import { t } from "../i18n.js";
import { button, h, pageHeader } from "../ui.js";
import { listClusters, openCenterPage } from "./common.js";
import { listPage } from "./list.js";

export const TYPES = ["cpu", "memory", "disk", "gpu"];
// The units a price may be per, first one the default (same table as kboss.pricing.units).
const RESOURCE_UNITS = {
  cpu: ["核", "core", "m"],
  memory: ["Gi", "Mi", "Ti", "Ki"],
  disk: ["Gi", "Mi", "Ti"],
  gpu: ["卡", "card"],
};
const CHARGE_UNITS = ["小时", "天", "分钟", "秒"];
const ACCOUNT_UNITS = ["元", "角", "分"];

const priceText = (c) => `${c.unit_price} ${c.account_unit} / ${c.resource_unit} / ${c.charge_unit}`;
const componentName = (c) => `${c.type} ${c.model}`;

function stockList(c) {
  if (!c.import_export.length) return "—";
  return h(
    "ul",
    { class: "stock-list" },
    c.import_export.map((s) => h("li", {}, h("span", { text: s.clustername }), ` ${s.consumed} / ${s.stock}`)),
  );
}

export async function render(ctx) {
  const page = await openCenterPage(ctx, "components");
  if (!page) return;
  const { head, center } = page;
  const clusters = await listClusters(center.id);
  const tools = [
    h(
      "a",
      { class: "btn btn-secondary", href: `#/calculator/${seg(center.id)}`, "data-testid": "go-calculator" },
      t("nav.calculator"),
    ),
    ctx.isAdmin
      ? button(t("component.add"), () => create(), {
          kind: "primary",
          testid: "component-add",
          disabled: !clusters.length,
        })
      : null,
  ];
  head.prepend(pageHeader(t("component.title", { center: center.name }), tools));
  if (ctx.isAdmin && !clusters.length) {
    head.append(
      h(
        "p",
        { class: "notice", "data-testid": "need-cluster" },
        t("component.needCluster"),
        " ",
        h("a", { href: `#/clusters/${seg(center.id)}` }, t("cluster.import")),
      ),
    );
  }

  const list = listPage(page.body, {
    path: `/api/v1/centers/${seg(center.id)}/components`,
    columns,
    empty: t("component.none"),
    testid: "components-table",
    rowTestid: (c) => `component-${c.type}-${c.model}`,
  });

  function columns() {
    return [
      { label: t("component.type"), render: (c) => h("strong", { text: t(`type.${c.type}`) }) },
      { label: t("component.model"), render: (c) => h("code", { text: c.model }) },
      {
        label: t("component.price"),
        render: (c) => h("span", { "data-testid": "component-price", text: priceText(c) }),
      },
      { label: t("component.stock"), render: (c) => String(c.stock) },
      { label: t("component.consumed"), render: (c) => String(c.consumed) },
      {
        label: t("component.available"),
        render: (c) => h("span", { "data-testid": "component-available", text: String(c.stock - c.consumed) }),
      },
      { label: t("component.perCluster"), render: stockList },
      { label: t("component.updated"), render: (c) => c.update_time },
      {
        label: t("common.actions"),
        class: "actions",
        render: (c) =>
          ctx.isAdmin
            ? [
                button(t("component.setPrice"), () => setPrice(c), { testid: "component-price-edit" }),
                button(t("component.addStock"), () => create(c), { testid: "component-add-stock" }),
                button(t("action.delete"), (e) => remove(c, e.currentTarget), {
                  kind: "danger",
                  testid: "component-delete",
                }),
              ]
            : "—",
      },
    ];
  }

  // `existing`: add stock to that component in a cluster (add_opt=yes) instead of creating a new one.
  function create(existing) {
    const c = existing || { type: "cpu", model: "STANDARD", charge_unit: "小时", account_unit: "元" };
    const unitOptions = (type) => RESOURCE_UNITS[type].map((u) => [u, u]);
    let shownType = c.type;
    const dialog = {
      title: existing ? t("component.addStockTitle", { name: componentName(c) }) : t("component.add"),
      testid: "component-dialog",
      fields: [
        {
          name: "clusterid",
          label: t("component.cluster"),
          type: "select",
          options: clusters.map((k) => [k.id, k.name]),
          required: true,
        },
        {
          name: "type",
          label: t("component.type"),
          type: "select",
          value: c.type,
          options: TYPES.map((x) => [x, t(`type.${x}`)]),
        },
        { name: "model", label: t("component.model"), value: c.model, required: true },
        {
          name: "resource_unit",
          label: t("component.resource_unit"),
          type: "select",
          value: c.resource_unit,
          options: unitOptions(c.type),
        },
        {
          name: "unit_price",
          label: t("component.unit_price"),
          value: c.unit_price ?? "",
          required: true,
          inputmode: "decimal",
          placeholder: "1.5",
        },
        {
          name: "charge_unit",
          label: t("component.charge_unit"),
          type: "select",
          value: c.charge_unit,
          options: CHARGE_UNITS.map((u) => [u, u]),
        },
        {
          name: "account_unit",
          label: t("component.account_unit"),
          type: "select",
          value: c.account_unit,
          options: ACCOUNT_UNITS.map((u) => [u, u]),
        },
        { name: "stock", label: t("component.stockToAdd"), type: "number", min: 0, value: "0", inputmode: "numeric" },
        {
          name: "add_opt",
          label: t("component.add_opt"),
          type: "checkbox",
          value: Boolean(existing),
          hint: t("component.add_optHint"),
        },
      ],
      onInput: (form) => {
        const type = form.elements.namedItem("type").value;
        if (type === shownType) return;
        shownType = type;
        const select = form.elements.namedItem("resource_unit");
        select.replaceChildren(...unitOptions(type).map(([v, l]) => h("option", { value: v, text: l })));
      },
      onSubmit: (values) =>
        api.post("/api/v1/components", { ...values, cpcid: center.id, add_opt: values.add_opt ? "yes" : "no" }),
    };
    return list.save(dialog, { done: existing ? "toast.saved" : "toast.added", name: componentName });
  }

  function setPrice(component) {
    const dialog = {
      title: t("component.setPriceTitle", { name: componentName(component) }),
      testid: "price-dialog",
      fields: [
        {
          name: "unit_price",
          label: `${t("component.unit_price")} (${component.account_unit} / ${component.resource_unit} / ${component.charge_unit})`,
          value: component.unit_price,
          required: true,
          inputmode: "decimal",
        },
      ],
      onSubmit: (values) => api.patch(`/api/v1/components/${seg(component.id)}`, values),
    };
    return list.save(dialog, { name: componentName });
  }

  function remove(component, btn) {
    const name = componentName(component);
    const question = t("component.confirmDelete", { name });
    return list.remove(btn, { path: `/api/v1/components/${seg(component.id)}`, name, question });
  }

  await list.load();
}
