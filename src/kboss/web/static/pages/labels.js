// Label catalog (标签): node labels are `key=value` (labeltype 1), instance labels `key:value` (labeltype 0).

import { api, seg } from "../api.js";
import { t } from "../i18n.js";
import { badge, button, h, pageHeader, spinner } from "../ui.js";
import { listPage } from "./list.js";

const SYMBOL = { 1: "=", 0: ":" };
// The label types as select options, named in the language chosen at the moment.
const labelTypes = () => ["1", "0"].map((type) => [type, t(`label.type${type}`)]);
// How a label is written on a node or an instance: `kyy-gpu=true`, `app:ubuntu3`.
const labelText = (l) => `${l.label_key}${l.symbol}${l.label_value}`;

export async function render(ctx) {
  const filter = h(
    "select",
    { id: "label-filter", "data-testid": "label-filter", onchange: () => list.load() },
    [["", t("label.all")], ...labelTypes()].map(([value, text]) => h("option", { value, text })),
  );
  const add = ctx.isAdmin ? button(t("label.add"), () => create(), { kind: "primary", testid: "label-add" }) : null;
  const host = h("div", {}, spinner());
  ctx.view.append(
    pageHeader(
      t("nav.labels"),
      h("span", { class: "inline-field" }, h("label", { for: "label-filter", text: t("label.filter") }), filter),
      add,
    ),
    h("p", { class: "muted", text: t("label.explain") }),
    host,
  );
  const list = listPage(host, {
    path: "/api/v1/labels",
    query: () => ({ rows: 1000, labeltype: filter.value }),
    columns,
    empty: t("label.none"),
    testid: "labels-table",
    rowTestid: (l) => `label-${l.label_key}`,
  });

  function columns() {
    return [
      { label: t("label.name"), render: (l) => l.name },
      {
        label: t("label.type"),
        render: (l) => badge(t(`label.type${l.labeltype}`), l.labeltype === "1" ? "info" : "neutral"),
      },
      {
        label: t("label.text"),
        render: (l) => h("code", { "data-testid": "label-text", text: labelText(l) }),
      },
      { label: t("label.updated"), render: (l) => l.update_time },
      {
        label: t("common.actions"),
        class: "actions",
        render: (l) =>
          ctx.isAdmin
            ? button(t("action.delete"), (e) => remove(l, e.currentTarget), { kind: "danger", testid: "label-delete" })
            : "—",
      },
    ];
  }

  function create() {
    const preview = h("code", { "data-testid": "label-preview" }, "");
    const extra = h("p", { class: "muted" }, t("label.preview"), " ", preview);
    const dialog = {
      title: t("label.add"),
      testid: "label-dialog",
      fields: [
        { name: "name", label: t("label.name"), required: true, placeholder: "GPU设备" },
        { name: "labeltype", label: t("label.type"), type: "select", value: "1", options: labelTypes() },
        { name: "label_key", label: t("label.key"), required: true, placeholder: "kyy-gpu" },
        { name: "label_value", label: t("label.value"), required: true, placeholder: "true" },
      ],
      extra,
      onInput: (form) => {
        const v = (name) => form.elements.namedItem(name).value.trim();
        preview.textContent = `${v("label_key")}${SYMBOL[v("labeltype")]}${v("label_value")}`;
      },
      onSubmit: (values) => api.post("/api/v1/labels", values),
    };
    return list.save(dialog, { done: "toast.added", name: labelText });
  }

  function remove(label, btn) {
    const text = labelText(label);
    const question = t("label.confirmDelete", { text });
    return list.remove(btn, { path: `/api/v1/labels/${seg(label.id)}`, name: text, question });
  }

  await list.load();
}
