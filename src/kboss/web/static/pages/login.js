// Sign-in. The answer's HttpOnly cookie is the session; the bearer token in the body is for API clients and is
// deliberately not stored anywhere script-readable.

import { api } from "../api.js";
import { t } from "../i18n.js";
import { busy, field, formValues, h } from "../ui.js";

export function render(ctx) {
  const error = h("p", { class: "form-error", role: "alert", "data-testid": "login-error", hidden: true });
  const submit = h(
    "button",
    { type: "submit", class: "btn btn-primary btn-block", "data-testid": "login-submit" },
    t("auth.login"),
  );
  const form = h(
    "form",
    { class: "login-form", "data-testid": "login-form", novalidate: true },
    h("h1", { text: t("auth.title") }),
    h("p", { class: "muted", text: t("auth.subtitle") }),
    field({ name: "username", label: t("auth.username"), required: true, autocomplete: "username" }),
    field({
      name: "password",
      label: t("auth.password"),
      type: "password",
      required: true,
      autocomplete: "current-password",
    }),
    error,
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    const { username, password } = formValues(form);
    if (!username || !password) {
      error.textContent = t("auth.missing");
      error.hidden = false;
      return;
    }
    try {
      await busy(submit, async () => {
        await api.post("/api/v1/auth/login", { username, password });
        ctx.signedIn(await api.get("/api/v1/auth/me"));
      });
      const next = ctx.query.get("next");
      ctx.go(next && next.startsWith("/") && !next.startsWith("/login") ? next : "/centers");
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    }
  });
  ctx.view.append(h("div", { class: "login-wrap" }, form));
  form.querySelector("input").focus();
}
