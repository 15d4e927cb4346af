// Small DOM toolkit: element builder, toasts, busy buttons, dialogs, tables. No framework: pages rebuild
// their own section of the DOM from data, which keeps every module readable on its own.

import { t } from "./i18n.js";

// h("button", {class: "btn", onclick: fn, "data-testid": "x"}, "text", child...)
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key in el && typeof value !== "string")
      el[key] = value; // e.g. checked, disabled, value numbers
    else el.setAttribute(key, value === true ? "" : value);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// Toasts. The same message twice while the first is still shown is not repeated: a failing poll must not
// bury the page under copies of one error.
const shown = new Map();

export function toast(message, kind = "info") {
  const region = document.getElementById("toasts");
  const key = `${kind}:${message}`;
  if (shown.has(key)) return shown.get(key);
  const close = () => {
    node.remove();
    shown.delete(key);
  };
  const node = h(
    "div",
    { class: `toast toast-${kind}`, role: kind === "error" ? "alert" : "status", "data-testid": `toast-${kind}` },
    h("span", { class: "toast-text", text: message }),
    h("button", { type: "button", class: "toast-close", onclick: close, "aria-label": t("action.close") }, "×"),
  );
  region.append(node);
  shown.set(key, node);
  // Errors stay longer: the operator has to read which parameter was wrong.
  setTimeout(close, kind === "error" ? 12000 : 5000);
  return node;
}

// On leaving a page its confirmations are stale; errors stay until read or timed out.
export function clearToasts(kinds = ["success", "info"]) {
  for (const [key, node] of shown) {
    if (kinds.includes(key.split(":")[0])) {
      node.remove();
      shown.delete(key);
    }
  }
}

export const toastError = (error) => toast(error.message || String(error), "error");

// Run `work` with the button disabled and a spinner in it; the page stays responsive meanwhile.
export async function busy(button, work) {
  if (!button) return work();
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  const spin = h("span", { class: "spinner", "aria-hidden": "true" });
  button.prepend(spin);
  try {
    return await work();
  } finally {
    spin.remove();
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

export const spinner = (label) =>
  h(
    "div",
    { class: "loading", role: "status", "data-testid": "loading" },
    h("span", { class: "spinner" }),
    label || t("state.loading"),
  );

export const emptyState = (text, ...extra) =>
  h("div", { class: "empty", "data-testid": "empty" }, h("p", { text }), ...extra);

export const badge = (text, kind = "neutral", testid) =>
  h("span", { class: `badge badge-${kind}`, "data-testid": testid }, text);

export function button(label, onclick, { kind = "secondary", testid, disabled, title, type = "button" } = {}) {
  return h("button", { type, class: `btn btn-${kind}`, onclick, "data-testid": testid, disabled, title }, label);
}

// columns: [{label, render(row) -> node|string, class}]; rows become cards on a phone (see style.css).
export function table(columns, rows, { empty, testid, rowTestid } = {}) {
  if (!rows.length) return emptyState(empty || t("state.empty"));
  const head = h(
    "thead",
    {},
    h(
      "tr",
      {},
      columns.map((c) => h("th", { scope: "col", text: c.label })),
    ),
  );
  const body = h(
    "tbody",
    {},
    rows.map((row) =>
      h(
        "tr",
        { "data-testid": rowTestid ? rowTestid(row) : undefined },
        // One wrapper per cell: on a phone the cell is a two-column grid (label, content), see style.css.
        columns.map((c) =>
          h("td", { "data-label": c.label, class: c.class }, h("div", { class: "cell" }, c.render(row))),
        ),
      ),
    ),
  );
  return h("div", { class: "table-wrap" }, h("table", { class: "table", "data-testid": testid }, head, body));
}

// One labelled form control. def: {name, label, type, value, required, options:[[value,label]], hint, ...}
export function field(def) {
  const id = `f-${def.name}-${Math.random().toString(36).slice(2, 8)}`;
  const common = { id, name: def.name, required: def.required, "data-testid": `field-${def.name}` };
  let control;
  if (def.type === "select") {
    control = h(
      "select",
      common,
      def.options.map(([value, label]) => h("option", { value, text: label })),
    );
    if (def.value !== undefined && def.value !== null) control.value = String(def.value);
  } else if (def.type === "textarea") {
    control = h("textarea", { ...common, rows: def.rows || 4, placeholder: def.placeholder, spellcheck: "false" });
    control.value = def.value ?? "";
  } else if (def.type === "checkbox") {
    control = h("input", { ...common, type: "checkbox", checked: Boolean(def.value) });
  } else {
    control = h("input", {
      ...common,
      type: def.type || "text",
      min: def.min,
      step: def.step,
      placeholder: def.placeholder,
      autocomplete: def.autocomplete || "off",
      inputmode: def.inputmode,
    });
    control.value = def.value ?? "";
  }
  const hint = def.hint ? h("small", { class: "hint", id: `${id}-hint`, text: def.hint }) : null;
  if (hint) control.setAttribute("aria-describedby", hint.id);
  const label = h("label", { for: id, text: def.label + (def.required ? " *" : "") });
  return h(
    "div",
    { class: `field${def.type === "checkbox" ? " field-check" : ""}${def.wide ? " field-wide" : ""}` },
    label,
    control,
    hint,
  );
}

// Values of a form's named controls; numbers stay strings (the API parses and names what is wrong).
export function formValues(form) {
  const values = {};
  for (const el of form.elements) {
    if (!el.name) continue;
    values[el.name] = el.type === "checkbox" ? el.checked : el.value.trim();
  }
  return values;
}

// A modal form. onSubmit(values, form) may throw: its message is shown inside the dialog, which stays open so
// nothing typed is lost. Resolves with onSubmit's result, or null when cancelled.
export function formDialog({ title, fields, submitLabel, onSubmit, onInput, testid = "dialog", extra }) {
  return new Promise((resolve) => {
    const error = h("p", { class: "form-error", role: "alert", "data-testid": "form-error", hidden: true });
    const submit = h(
      "button",
      { type: "submit", class: "btn btn-primary", "data-testid": "dialog-submit" },
      submitLabel || t("action.save"),
    );
    const cancel = button(t("action.cancel"), () => dialog.close(), { testid: "dialog-cancel" });
    const form = h(
      "form",
      { class: "dialog-form", novalidate: true },
      h("h2", { text: title }),
      h(
        "div",
        { class: "form-grid" },
        fields.map((f) => (f instanceof Node ? f : field(f))),
      ),
      extra || null,
      error,
      h("div", { class: "dialog-actions" }, cancel, submit),
    );
    const dialog = h("dialog", { class: "dialog", "data-testid": testid, "aria-label": title }, form);
    let result = null;
    if (onInput) {
      form.addEventListener("input", () => onInput(form));
      form.addEventListener("change", () => onInput(form));
    }
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.hidden = true;
      try {
        result = await busy(submit, () => onSubmit(formValues(form), form));
        dialog.close();
      } catch (err) {
        error.textContent = err.message || String(err);
        error.hidden = false;
        markInvalid(form, error.textContent);
      }
    });
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(result);
    });
    document.body.append(dialog);
    dialog.showModal();
    if (onInput) onInput(form);
  });
}

// kboss names the parameter ("参数 ip 无效: ..."): point at that control so the operator sees where to look.
function markInvalid(form, message) {
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  const match = /参数 ([\w.\[\]]+) /.exec(message);
  const control = match && form.elements.namedItem(match[1].split(".")[0]);
  if (control && control.focus) {
    control.setAttribute("aria-invalid", "true");
    control.focus();
  }
}

export function confirmDialog(message, confirmLabel) {
  return new Promise((resolve) => {
    let answer = false;
    const yes = button(
      confirmLabel || t("action.confirm"),
      () => {
        answer = true;
        dialog.close();
      },
      { kind: "danger", testid: "confirm-yes" },
    );
    const no = button(t("action.cancel"), () => dialog.close(), { testid: "confirm-no" });
    const dialog = h(
      "dialog",
      { class: "dialog dialog-small", "data-testid": "confirm", role: "alertdialog", "aria-label": message },
      h("p", { text: message }),
      h("div", { class: "dialog-actions" }, no, yes),
    );
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(answer);
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

// A page section: title, toolbar, then content.
export function pageHeader(title, ...tools) {
  return h(
    "div",
    { class: "page-head" },
    h("h1", { text: title, "data-testid": "page-title" }),
    h("div", { class: "toolbar" }, tools),
  );
}

export const dash = (value) => (value === null || value === undefined || value === "" ? "—" : String(value));

// An API failure shown in place of the content it was loading (`role=alert`: screen readers announce it).
export const errorNotice = (message, testid) =>
  h("p", { class: "notice notice-error", role: "alert", "data-testid": testid, text: message });
