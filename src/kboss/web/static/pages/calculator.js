// Price calculator: lines of type/model/amount, a duration and its unit → POST /api/v1/quotes. Shows the API's
// per-line subtotals and per-line errors exactly as priced by the server (no arithmetic is redone here).

import { api, seg } from "../api.js";
import { t } from "../i18n.js";
import { busy, button, clear, h, pageHeader, table } from "../ui.js";
import { listClusters, openCenterPage } from "./common.js";
import { TYPES } from "./components.js";

// Units the quote's amounts are stated in (fixed by the API), shown next to each amount.
const REQUEST_UNIT = { cpu: "核", memory: "Mi", disk: "Gi", gpu: "卡" };
// "1024 Mi → 1 Gi" when the component is priced in another unit than the request's, else just "4 核".
const billed = (l) => {
  const asked = `${l.amount} ${REQUEST_UNIT[l.resource_type]}`;
  return l.resource_unit === REQUEST_UNIT[l.resource_type] ? asked : `${asked} → ${l.billed_amount} ${l.resource_unit}`;
};
const DURATION_UNITS = ["小时", "天", "周", "月", "分钟", "秒"];
// "1.5000000000" → "1.5": the server keeps prices to 10 places; trailing zeros say nothing to a reader.
const trim = (text) => (/\./.test(String(text)) ? String(text).replace(/0+$/, "").replace(/\.$/, "") : String(text));

export async function render(ctx) {
  const page = await openCenterPage(ctx, "calculator");
  if (!page) return;
  const { head, body, center } = page;
  head.prepend(pageHeader(t("quote.title", { center: center.name })));
  const [clusters, { rows: components }] = await Promise.all([
    listClusters(center.id),
    api.get(`/api/v1/centers/${seg(center.id)}/components`, { rows: 1000 }),
  ]);
  const models = (type) => [...new Set(components.filter((c) => c.type === type).map((c) => c.model))];

  let seq = 0;
  const lines = h("div", { class: "quote-lines", "data-testid": "quote-lines" });
  const result = h("div", { class: "quote-result", "data-testid": "quote-result", "aria-live": "polite" });
  const formError = h("p", { class: "form-error", role: "alert", "data-testid": "quote-error", hidden: true });

  function addLine(type = "cpu", amount = "1") {
    const n = ++seq;
    const id = (name) => `q-${name}-${n}`;
    const unit = h("span", { class: "unit", "data-testid": "line-unit" }, REQUEST_UNIT[type]);
    const listId = id("models");
    const datalist = h("datalist", { id: listId });
    const model = h("input", {
      id: id("model"),
      name: "model",
      list: listId,
      "data-testid": "line-model",
      autocomplete: "off",
    });
    const typeSel = h(
      "select",
      { id: id("type"), name: "type", "data-testid": "line-type" },
      TYPES.map((x) => h("option", { value: x, text: t(`type.${x}`) })),
    );
    const amountIn = h("input", {
      id: id("amount"),
      name: "amount",
      type: "number",
      min: 1,
      step: 1,
      value: amount,
      inputmode: "numeric",
      "data-testid": "line-amount",
    });
    const lineError = h("p", { class: "line-error", "data-testid": "line-error", hidden: true });
    const setModels = () => {
      const known = models(typeSel.value);
      datalist.replaceChildren(...known.map((m) => h("option", { value: m })));
      model.value = known[0] || "STANDARD";
      unit.textContent = REQUEST_UNIT[typeSel.value];
    };
    typeSel.value = type;
    typeSel.addEventListener("change", setModels);
    setModels();
    const row = h(
      "div",
      { class: "quote-line", "data-testid": "quote-line" },
      h("div", { class: "field" }, h("label", { for: id("type"), text: t("component.type") }), typeSel),
      h("div", { class: "field" }, h("label", { for: id("model"), text: t("component.model") }), model, datalist),
      h(
        "div",
        { class: "field" },
        h("label", { for: id("amount"), text: t("quote.amount") }),
        h("div", { class: "with-unit" }, amountIn, unit),
      ),
      button(t("quote.removeLine"), () => row.remove(), { kind: "ghost", testid: "line-remove" }),
      lineError,
    );
    lines.append(row);
  }

  const duration = h("input", {
    id: "q-duration",
    type: "number",
    min: 1,
    step: 1,
    value: "1",
    inputmode: "numeric",
    "data-testid": "quote-duration",
  });
  const durationUnit = h(
    "select",
    { id: "q-duration-unit", "data-testid": "quote-duration-unit" },
    DURATION_UNITS.map((u) => h("option", { value: u, text: u })),
  );
  const clusterSel = h(
    "select",
    { id: "q-cluster", "data-testid": "quote-cluster" },
    h("option", { value: "", text: t("quote.allClusters") }),
    clusters.map((c) => h("option", { value: c.id, text: c.name })),
  );
  const submit = h(
    "button",
    { type: "submit", class: "btn btn-primary", "data-testid": "quote-submit" },
    t("quote.submit"),
  );
  const form = h(
    "form",
    { class: "quote-form card", novalidate: true },
    lines,
    button(t("quote.addLine"), () => addLine("memory", "1024"), { testid: "line-add" }),
    h(
      "div",
      { class: "form-grid" },
      h("div", { class: "field" }, h("label", { for: "q-duration", text: t("quote.duration") }), duration),
      h(
        "div",
        { class: "field" },
        h("label", { for: "q-duration-unit", text: t("quote.duration_unit") }),
        durationUnit,
      ),
      h("div", { class: "field" }, h("label", { for: "q-cluster", text: t("component.cluster") }), clusterSel),
    ),
    formError,
    h("div", { class: "dialog-actions" }, submit),
  );
  addLine("cpu", "4");
  if (!components.length)
    head.append(h("p", { class: "notice", "data-testid": "no-components" }, t("quote.noComponents")));

  function request() {
    const rows = [...lines.querySelectorAll("[data-testid=quote-line]")];
    const resources = rows.map((row) => ({
      type: row.querySelector("[name=type]").value,
      model: row.querySelector("[name=model]").value.trim(),
      amount: row.querySelector("[name=amount]").value.trim(),
    }));
    return {
      rows,
      body: {
        cpcid: center.id,
        clusterid: clusterSel.value || undefined,
        resources,
        duration: duration.value.trim(),
        duration_unit: durationUnit.value,
      },
    };
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const { rows, body } = request();
    formError.hidden = true;
    for (const row of rows) row.querySelector("[data-testid=line-error]").hidden = true;
    clear(result);
    if (!rows.length) {
      formError.textContent = t("quote.noLines");
      formError.hidden = false;
      return;
    }
    try {
      const quote = await busy(submit, () => api.post("/api/v1/quotes", body));
      showQuote(quote, rows);
    } catch (error) {
      formError.textContent = error.message;
      formError.hidden = false;
      // "参数 resources[1].amount 无效": point at that line's control.
      const match = /resources\[(\d+)\]\.(\w+)/.exec(error.message);
      const control = match && rows[Number(match[1])]?.querySelector(`[name=${match[2]}]`);
      if (control) {
        control.setAttribute("aria-invalid", "true");
        control.focus();
      }
    }
  });

  function showQuote(quote, rows) {
    quote.price_details.forEach((line, i) => {
      if (!line.error || !rows[i]) return;
      const slot = rows[i].querySelector("[data-testid=line-error]");
      slot.textContent = line.error;
      slot.hidden = false;
    });
    const columns = [
      { label: "#", render: (_, i) => String(i + 1) },
      { label: t("quote.resource"), render: (l) => l.resource_name || t(`type.${l.resource_type}`) },
      {
        label: t("quote.amount"),
        render: (l) => (l.error ? "—" : billed(l)),
      },
      {
        label: t("component.price"),
        render: (l) =>
          l.error ? "—" : `${trim(l.unit_price)} ${l.account_unit} / ${l.resource_unit} / ${l.charge_unit}`,
      },
      {
        label: t("quote.subtotal"),
        render: (l) =>
          l.error
            ? h("span", { class: "text-error", "data-testid": "line-result-error", text: l.error })
            : h("span", { "data-testid": "line-subtotal", text: `${l.subtotal} 元` }),
      },
    ];
    const indexed = quote.price_details.map((l, i) => ({ ...l, _i: i }));
    const withIndex = columns.map((c) => ({ ...c, render: (l) => c.render(l, l._i) }));
    clear(
      result,
      table(withIndex, indexed, { testid: "quote-table" }),
      h(
        "p",
        { class: `quote-total ${quote.status ? "" : "has-errors"}` },
        h("span", { text: t("quote.total", { duration: quote.duration, unit: quote.duration_unit }) }),
        " ",
        h("strong", { "data-testid": "quote-total", text: `${quote.total_price}` }),
        ` ${quote.currency}`,
      ),
      h(
        "p",
        {
          class: quote.status ? "notice notice-ok" : "notice notice-error",
          "data-testid": "quote-message",
          role: quote.status ? "status" : "alert",
        },
        quote.message,
      ),
    );
  }

  clear(body, form, result);
}
