// Publishing a provider's centers to its customers (发布算力中心), opened from the customers page: pick a
// center, see whom it is published to, publish it to every customer or to the ones ticked, or unpublish it. The API
// adds and removes customers (`POST .../publish`, `.../unpublish`): a new choice is sent as the difference.

import { api, seg } from "../api.js";
import { t } from "../i18n.js";
import { busy, button, clear, confirmDialog, h, spinner, toast } from "../ui.js";

const PUB = "/api/v1/centers";

// Make the publication `{all, ids}` from what it is (`current`, the API's answer). Answers the API's last answer.
async function apply(centerId, current, wanted) {
  const path = (verb) => `${PUB}/${seg(centerId)}/${verb}`;
  if (wanted.all) return api.post(path("publish"), { customers: "all" });
  let answer = current;
  if (current.all) answer = await api.post(path("unpublish"), { customers: "all" });
  const had = new Set(answer.customers.map((c) => c.id));
  const added = wanted.ids.filter((id) => !had.has(id));
  const removed = [...had].filter((id) => !wanted.ids.includes(id));
  if (added.length) answer = await api.post(path("publish"), { customers: added });
  if (removed.length) answer = await api.post(path("unpublish"), { customers: removed });
  return answer;
}

const radio = (name, value, label, testid) => {
  const input = h("input", { type: "radio", name, value, id: `${name}-${value}`, "data-testid": testid });
  return h("div", { class: "field field-check" }, input, h("label", { for: input.id, text: label }));
};

export async function openPublish() {
  const error = h("p", { class: "form-error", role: "alert", "data-testid": "publish-error", hidden: true });
  const body = h("div", {}, spinner());
  const close = button(t("action.close"), () => dialog.close(), { testid: "publish-close" });
  const actions = h("div", { class: "dialog-actions" }, close);
  const dialog = h(
    "dialog",
    { class: "dialog", "data-testid": "publish-dialog", "aria-label": t("publish.title") },
    h(
      "div",
      { class: "dialog-form" },
      h("h2", { text: t("publish.title") }),
      body,
      error,
      actions,
    ),
  );
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  const fail = (err) => {
    error.textContent = err.message || String(err);
    error.hidden = false;
  };
  try {
    const [centers, customers] = await Promise.all([
      api.get(PUB, { rows: 1000 }).then((a) => a.rows),
      api.get("/api/v1/customers", { rows: 1000 }).then((a) => a.rows),
    ]);
    if (!centers.length) return clear(body, h("p", { class: "notice", text: t("center.none") }));
    if (!customers.length) return clear(body, h("p", { class: "notice", text: t("publish.noCustomers") }));
    form(body, actions, centers, customers, fail, () => (error.hidden = true));
  } catch (err) {
    clear(body);
    fail(err);
  }
}

// The center picker, its publication and the choice; the publish and unpublish buttons join the dialog's close.
function form(body, actions, centers, customers, fail, ok) {
  const picker = h(
    "select",
    { id: "publish-center", "data-testid": "publish-center", onchange: () => load() },
    centers.map((c) => h("option", { value: c.id, text: c.name })),
  );
  const current = h("span", { "data-testid": "publish-current" });
  const all = radio("publish-scope", "all", t("publish.toAll"), "publish-all");
  const chosen = radio("publish-scope", "chosen", t("publish.toChosen"), "publish-chosen");
  const boxes = customers.map((c) => {
    const props = { type: "checkbox", value: c.id, id: `publish-${c.id}`, "data-testid": `publish-customer-${c.name}` };
    const input = h("input", props);
    input.addEventListener("change", () => (chosen.querySelector("input").checked = true));
    return [input, h("div", { class: "field field-check" }, input, h("label", { for: input.id, text: c.name }))];
  });
  const save = button(t("publish.save"), () => run(save, publish), { kind: "primary", testid: "publish-save" });
  const unpublish = button(t("publish.unpublish"), () => run(unpublish, remove), {
    kind: "danger",
    testid: "publish-unpublish",
  });
  let publication = null;
  clear(
    body,
    h("div", { class: "center-picker" }, h("label", { for: picker.id, text: t("publish.center") }), picker),
    h("p", { class: "notice" }, t("publish.current"), " ", current),
    h(
      "fieldset",
      { class: "card" },
      h("legend", { text: t("publish.scope") }),
      all,
      chosen,
      h("div", { class: "publish-customers" }, boxes.map(([, row]) => row)),
    ),
  );
  actions.prepend(unpublish);
  actions.append(save);
  const centerName = () => centers.find((c) => c.id === picker.value).name;

  function show(answer) {
    publication = answer;
    const names = answer.customers.map((c) => c.name).join("、");
    current.textContent = answer.all ? t("publish.everyone") : names || t("publish.nobody");
    all.querySelector("input").checked = answer.all;
    chosen.querySelector("input").checked = !answer.all;
    const ids = new Set(answer.customers.map((c) => c.id));
    for (const [input] of boxes) input.checked = answer.all || ids.has(input.value);
  }

  async function load() {
    ok();
    current.textContent = t("state.loading");
    try {
      show(await api.get(`${PUB}/${seg(picker.value)}/publication`));
    } catch (err) {
      fail(err);
    }
  }

  async function run(btn, work) {
    ok();
    try {
      const answer = await busy(btn, work);
      if (!answer) return;
      show(answer);
      toast(t("publish.done", { name: centerName() }), "success");
    } catch (err) {
      fail(err);
    }
  }

  function publish() {
    const ids = boxes.filter(([input]) => input.checked).map(([input]) => input.value);
    const toAll = all.querySelector("input").checked;
    if (!toAll && !ids.length) throw new Error(t("publish.pickSome"));
    return apply(picker.value, publication, { all: toAll, ids });
  }

  async function remove() {
    const question = t("publish.confirmUnpublish", { name: centerName() });
    if (!(await confirmDialog(question, t("publish.unpublish")))) return null;
    return api.post(`${PUB}/${seg(picker.value)}/unpublish`, { customers: "all" });
  }

  return load();
}
