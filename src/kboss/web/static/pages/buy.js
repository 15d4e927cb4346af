// Buy page: GPU cards available per model (GET /api/v1/gpu-inventory), for all centers or one center/cluster.
// Products and the reasons some are greyed out arrive with instances (issue 5); a placeholder keeps their place.

import { api } from "../api.js";
import { t } from "../i18n.js";
import { clear, emptyState, h, pageHeader, spinner } from "../ui.js";
import { listClusters } from "./common.js";

export async function render(ctx) {
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
    h("p", { class: "notice", "data-testid": "products-coming" }, t("buy.productsComing")),
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
      clear(cards, h("p", { class: "notice notice-error", role: "alert", text: error.message }));
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
        clear(cards, h("p", { class: "notice notice-error", role: "alert", text: error.message }));
        return;
      }
    }
    await load();
  });
  clusterSel.addEventListener("change", load);
  await load();
}
