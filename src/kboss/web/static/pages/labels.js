// Label catalog (标签): node labels are `key=value` (labeltype 1), instance labels `key:value` (labeltype 0).

import { api, seg } from "../api.js";
import { t } from "../i18n.js";
import { badge, button, clear, errorNotice, formDialog, h, pageHeader, spinner, table, toast } from "../ui.js";
import { confirmAndDelete } from "./common.js";

const SYMBOL = { 1: "=", 0: ":" };

export async function render(ctx) {
  const filter = h(
    "select",
    { id: "label-filter", "data-testid": "label-filter", onchange: () => load() },
    h("option", { value: "", text: t("label.all") }),
    h("option", { value: "1", text: t("label.type1") }),
    h("option", { value: "0", text: t("label.type0") }),
  );
  const add = ctx.isAdmin ? button(t("label.add"), () => create(), { kind: "primary", testid: "label-add" }) : null;
  const list = h("div", {}, spinner());
  ctx.view.append(
    pageHeader(
      t("nav.labels"),
      h("span", { class: "inline-field" }, h("label", { for: "label-filter", text: t("label.filter") }), filter),
      add,
    ),
    h("p", { class: "muted", text: t("label.explain") }),
    list,
  );

  async function load() {
    try {
      const { rows } = await api.get("/api/v1/labels", { rows: 1000, labeltype: filter.value });
      clear(
        list,
        table(columns(), rows, {
          empty: t("label.none"),
          testid: "labels-table",
          rowTestid: (l) => `label-${l.label_key}`,
        }),
      );
    } catch (error) {
      clear(list, errorNotice(error.message));
    }
  }

  function columns() {
    return [
      { label: t("label.name"), render: (l) => l.name },
      {
        label: t("label.type"),
        render: (l) => badge(t(`label.type${l.labeltype}`), l.labeltype === "1" ? "info" : "neutral"),
      },
      {
        label: t("label.text"),
        render: (l) => h("code", { "data-testid": "label-text", text: `${l.label_key}${l.symbol}${l.label_value}` }),
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

  async function create() {
    const preview = h("code", { "data-testid": "label-preview" }, "");
    const extra = h("p", { class: "muted" }, t("label.preview"), " ", preview);
    const saved = await formDialog({
      title: t("label.add"),
      testid: "label-dialog",
      fields: [
        { name: "name", label: t("label.name"), required: true, placeholder: "GPU设备" },
        {
          name: "labeltype",
          label: t("label.type"),
          type: "select",
          value: "1",
          options: [
            ["1", t("label.type1")],
            ["0", t("label.type0")],
          ],
        },
        { name: "label_key", label: t("label.key"), required: true, placeholder: "kyy-gpu" },
        { name: "label_value", label: t("label.value"), required: true, placeholder: "true" },
      ],
      extra,
      onInput: (form) => {
        const v = (name) => form.elements.namedItem(name).value.trim();
        preview.textContent = `${v("label_key")}${SYMBOL[v("labeltype")]}${v("label_value")}`;
      },
      onSubmit: (values) => api.post("/api/v1/labels", values),
    });
    if (saved) {
      toast(t("toast.added", { name: `${saved.label_key}${saved.symbol}${saved.label_value}` }), "success");
      await load();
    }
  }

  function remove(label, btn) {
    const text = `${label.label_key}${label.symbol}${label.label_value}`;
    return confirmAndDelete({
      question: t("label.confirmDelete", { text }),
      name: text,
      path: `/api/v1/labels/${seg(label.id)}`,
      button: btn,
      reload: load,
    });
  }

  await load();
}
