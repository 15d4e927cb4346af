// Buy page: GPU cards available per model (GET /api/v1/gpu-inventory), for all centers or one center/cluster,
// and products (an editable list, kept in localStorage) checked against one cluster with
// POST /api/v1/clusters/{id}/capacity: deployable ones, and greyed-out ones with the API's reasons. When the
// cluster does not answer the verdict comes from the catalog alone, and the page says so.

import { api, seg } from "../api.js";
import { t } from "../i18n.js";
import { badge, busy, button, clear, emptyState, errorNotice, h, pageHeader, spinner } from "../ui.js";
import { listClusters } from "./common.js";

const STORE = "kboss.products";
// Product units are fixed by the capacity API: cores, Mi, Gi, cards.
const TYPES = ["cpu", "memory", "disk", "gpu"];
const UNITS = { cpu: "unit.cores", memory: "Mi", disk: "Gi", gpu: "unit.cards" };
const DEFAULT_PRODUCTS = [
  {
    id: "cpu-4c8g",
    resources: [
      { type: "cpu", model: "", amount: "4" },
      { type: "memory", model: "", amount: "8192" },
    ],
  },
  {
    id: "gpu-1card",
    resources: [
      { type: "cpu", model: "", amount: "8" },
      { type: "memory", model: "", amount: "32768" },
      { type: "gpu", model: "RTX5090-32G", amount: "1" },
    ],
  },
];

function loadProducts() {
  try {
    const saved = JSON.parse(localStorage.getItem(STORE));
    if (Array.isArray(saved) && saved.length) return saved;
  } catch {
    // a damaged entry: start again from the defaults
  }
  return structuredClone(DEFAULT_PRODUCTS);
}

const unitText = (type) => (UNITS[type].startsWith("unit.") ? t(UNITS[type]) : UNITS[type]);

export async function render(ctx) {
  let products = loadProducts();
  const editor = h("div", { class: "product-editor", "data-testid": "product-editor" });
  const verdicts = h("div", { "data-testid": "product-verdicts" });
  const checkButton = button(t("buy.check"), () => check(), { kind: "primary", testid: "product-check" });
  drawEditor();
  const centerSel = h(
    "select",
    { id: "buy-center", "data-testid": "buy-center" },
    h("option", { value: "", text: t("buy.allCenters") }),
  );
  const clusterSel = h(
    "select",
    { id: "buy-cluster", "data-testid": "buy-cluster", disabled: true },
    h("option", { value: "", text: t("quote.allClusters") }),
  );
  const cards = h("div", { class: "gpu-grid", "data-testid": "gpu-inventory" }, spinner());
  ctx.view.append(
    pageHeader(t("nav.buy")),
    h(
      "div",
      { class: "filters" },
      h("div", { class: "field" }, h("label", { for: "buy-center", text: t("center.current") }), centerSel),
      h("div", { class: "field" }, h("label", { for: "buy-cluster", text: t("component.cluster") }), clusterSel),
    ),
    h("h2", { text: t("buy.gpuTitle") }),
    cards,
    h("h2", { text: t("buy.products") }),
    productsSection(),
  );

  const { rows: centers } = await api.get("/api/v1/centers", { rows: 1000 });
  centerSel.append(...centers.map((c) => h("option", { value: c.id, text: c.name })));

  async function load() {
    clear(cards, spinner());
    try {
      const inventory = await api.get("/api/v1/gpu-inventory", { cpcid: centerSel.value, clusterid: clusterSel.value });
      const models = Object.entries(inventory);
      if (!models.length) return clear(cards, emptyState(t("buy.noGpu")));
      clear(
        cards,
        models.map(([model, available]) =>
          h(
            "article",
            {
              class: `gpu-card${available > 0 ? "" : " soldout"}`,
              "data-testid": `gpu-${model}`,
              "aria-disabled": available > 0 ? undefined : "true",
            },
            h("h3", { text: model }),
            h(
              "p",
              { class: "gpu-count" },
              h("strong", { "data-testid": "gpu-available", text: String(available) }),
              ` ${t("buy.cards")}`,
            ),
            h("p", { class: "muted", text: available > 0 ? t("buy.available") : t("buy.soldOut") }),
          ),
        ),
      );
    } catch (error) {
      clear(cards, errorNotice(error.message));
    }
  }

  centerSel.addEventListener("change", async () => {
    clusterSel.replaceChildren(h("option", { value: "", text: t("quote.allClusters") }));
    clusterSel.disabled = !centerSel.value;
    if (centerSel.value) {
      try {
        const clusters = await listClusters(centerSel.value);
        clusterSel.append(...clusters.map((c) => h("option", { value: c.id, text: c.name })));
      } catch (error) {
        clear(cards, errorNotice(error.message));
        return;
      }
    }
    await load();
    check();
  });
  clusterSel.addEventListener("change", () => {
    load();
    check();
  });
  await load();
  check();

  // ---- products ------------------------------------------------------------------------------------
  function productsSection() {
    return h(
      "div",
      { class: "products" },
      h("p", { class: "muted", text: t("buy.productsHint") }),
      editor,
      h(
        "div",
        { class: "toolbar" },
        button(t("buy.addProduct"), () => {
          products.push({ id: `product-${products.length + 1}`, resources: [{ type: "cpu", model: "", amount: "1" }] });
          save();
          drawEditor();
        }, { testid: "product-add" }),
        checkButton,
        button(t("buy.resetProducts"), () => {
          products = structuredClone(DEFAULT_PRODUCTS);
          save();
          drawEditor();
        }, { kind: "link", testid: "product-reset" }),
      ),
      verdicts,
    );
  }

  function save() {
    localStorage.setItem(STORE, JSON.stringify(products));
  }

  function drawEditor() {
    clear(
      editor,
      products.map((product, index) =>
        h(
          "fieldset",
          { class: "product", "data-testid": "product" },
          h(
            "legend",
            {},
            h("input", {
              value: product.id,
              "aria-label": t("buy.productId"),
              "data-testid": "product-id",
              oninput: (e) => {
                product.id = e.target.value;
                save();
              },
            }),
          ),
          product.resources.map((line, li) => lineRow(product, line, li)),
          h(
            "div",
            { class: "toolbar" },
            button(t("quote.addLine"), () => {
              product.resources.push({ type: "cpu", model: "", amount: "1" });
              save();
              drawEditor();
            }, { testid: "product-line-add" }),
            button(t("buy.removeProduct"), () => {
              products.splice(index, 1);
              save();
              drawEditor();
            }, { kind: "link", testid: "product-remove" }),
          ),
        ),
      ),
    );
  }

  function lineRow(product, line, index) {
    const unit = h("span", { class: "muted", text: unitText(line.type) });
    const model = h("input", {
      value: line.model || "",
      placeholder: t("component.model"),
      "aria-label": t("component.model"),
      "data-testid": "product-line-model",
      oninput: (e) => {
        line.model = e.target.value;
        save();
      },
    });
    const type = h(
      "select",
      {
        "aria-label": t("component.type"),
        "data-testid": "product-line-type",
        onchange: (e) => {
          line.type = e.target.value;
          unit.textContent = unitText(line.type);
          save();
        },
      },
      TYPES.map((x) => h("option", { value: x, text: t(`type.${x}`) })),
    );
    type.value = line.type;
    return h(
      "div",
      { class: "product-line", "data-testid": "product-line" },
      type,
      model,
      h("input", {
        value: line.amount,
        inputmode: "decimal",
        "aria-label": t("quote.amount"),
        "data-testid": "product-line-amount",
        oninput: (e) => {
          line.amount = e.target.value;
          save();
        },
      }),
      unit,
      button("×", () => {
        product.resources.splice(index, 1);
        save();
        drawEditor();
      }, { kind: "link", testid: "product-line-remove", title: t("quote.removeLine") }),
    );
  }

  function payload() {
    return products.map((p) => ({
      id: p.id,
      resources: p.resources.map((r) => {
        const amount = Number(r.amount);
        const line = { type: r.type, amount: r.amount !== "" && Number.isFinite(amount) ? amount : r.amount };
        if (r.model) line.model = r.model;
        return line;
      }),
    }));
  }

  async function check() {
    if (!clusterSel.value) return clear(verdicts, h("p", { class: "notice", "data-testid": "products-pick" }, t("buy.pickCluster")));
    await busy(checkButton, async () => {
      clear(verdicts, spinner());
      try {
        const answer = await api.post(`/api/v1/clusters/${seg(clusterSel.value)}/capacity`, { resources: payload() });
        clear(verdicts, verdictList(answer));
      } catch (error) {
        clear(verdicts, errorNotice(error.message, "products-error"));
      }
    });
  }

  function verdictList(answer) {
    const source =
      answer.source === "catalog"
        ? h("p", { class: "notice notice-warn", "data-testid": "capacity-source" }, t("buy.fromCatalog", { detail: answer.detail || "" }))
        : h("p", { class: "muted", "data-testid": "capacity-source" }, t("buy.fromLive"));
    return [
      source,
      h(
        "div",
        { class: "gpu-grid" },
        answer.rows.map((row) =>
          h(
            "article",
            {
              class: `gpu-card product-card${row.deployable ? "" : " soldout"}`,
              "data-testid": `product-${row.id}`,
              "aria-disabled": row.deployable ? undefined : "true",
            },
            h("h3", { text: row.id }),
            row.deployable
              ? badge(t("buy.deployable"), "ok", "product-state")
              : badge(t("buy.notDeployable"), "error", "product-state"),
            row.deployable
              ? null
              : h("ul", { class: "reasons", "data-testid": "product-reasons" }, row.reasons.map((r) => h("li", { text: r }))),
          ),
        ),
      ),
    ];
  }
}
