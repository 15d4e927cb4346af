// Compute centers (算力中心): list, add, edit, delete. A simulated center (machines and clusters in memory, no
// site agent: for trying kboss without machines) is only made when its box is ticked, and is badged in the list.

import { api, seg } from "../api.js";
import { t } from "../i18n.js";
import { badge, button, dash, h, pageHeader, spinner } from "../ui.js";
import { remember, withoutBlank } from "./common.js";
import { listPage } from "./list.js";

// A simulated center has no site agent: these fields are hidden for it, and not sent.
const AGENT_FIELDS = ["pcapi_url", "api_user", "api_pwd", "agent_cert_sha256", "allow_plain_http"];

function centerFields(center) {
  const editing = Boolean(center);
  const c = center || {};
  const simulated = editing
    ? []
    : [{ name: "simulated", label: t("center.simulatedBox"), type: "checkbox", wide: true, hint: t("center.simulatedHint") }];
  return [
    { name: "name", label: t("center.name"), required: true, value: c.name },
    ...simulated,
    {
      name: "pcapi_url",
      label: t("center.pcapi_url"),
      required: true,
      value: c.pcapi_url,
      placeholder: "http://10.0.0.2:8000",
      type: "url",
    },
    { name: "api_user", label: t("center.api_user"), required: true, value: c.api_user },
    {
      name: "api_pwd",
      label: t("center.api_pwd"),
      type: "password",
      required: !editing,
      autocomplete: "new-password",
      hint: editing ? t("form.secretKeep") : undefined,
    },
    // TLS to the agent (docs/security.md): blank pins the certificate seen at first contact.
    {
      name: "agent_cert_sha256",
      label: t("center.certFingerprint"),
      value: c.agent_cert_sha256,
      placeholder: "AB:CD:…",
      wide: true,
      hint: t("center.certFingerprintHint"),
    },
    {
      name: "allow_plain_http",
      label: t("center.allowPlainHttp"),
      type: "checkbox",
      value: c.allow_plain_http,
      wide: true,
      hint: t("center.allowPlainHttpHint"),
    },
    { name: "contactname", label: t("center.contactname"), required: true, value: c.contactname },
    { name: "contactphone", label: t("center.contactphone"), required: true, value: c.contactphone, type: "tel" },
    { name: "enable_date", label: t("center.enable_date"), type: "date", value: c.enable_date },
    { name: "expire_date", label: t("center.expire_date"), type: "date", value: c.expire_date },
  ];
}

function showAgentFields(form, simulated) {
  for (const name of AGENT_FIELDS) {
    const control = form.elements.namedItem(name);
    control.closest(".field").hidden = simulated;
    control.disabled = simulated;
  }
}

function withoutAgent(values, simulated) {
  if (!simulated) return values;
  const out = { ...values };
  for (const name of AGENT_FIELDS) delete out[name];
  return out;
}

// An edit sends the fingerprint only when it was changed: a new agent URL with the fingerprint untouched is then a
// new first use (the API forgets the pin), and a changed fingerprint replaces the pin.
function edited(values, center) {
  const out = withoutBlank(values, ["api_pwd"]);
  if (out.agent_cert_sha256 === (center.agent_cert_sha256 || "")) delete out.agent_cert_sha256;
  return out;
}

// A link to one of the center's pages; the center is remembered as the one the nav's links open.
const centerLink = (center, page) => {
  const props = { href: `#/${page}/${seg(center.id)}`, class: "btn btn-link", onclick: () => remember(center.id) };
  return h("a", props, t(`nav.${page}`));
};

export async function render(ctx) {
  const host = h("div", {}, spinner());
  const add = ctx.isAdmin ? button(t("center.add"), () => edit(null), { kind: "primary", testid: "center-add" }) : null;
  ctx.view.append(pageHeader(t("nav.centers"), add), host);
  const list = listPage(host, {
    path: "/api/v1/centers",
    columns,
    empty: t("center.none"),
    testid: "centers-table",
    rowTestid: (c) => `center-${c.name}`,
  });

  function columns() {
    return [
      {
        label: t("center.name"),
        render: (c) =>
          h(
            "span",
            {},
            h("strong", { text: c.name }),
            c.simulated ? [" ", badge(t("center.simulated"), "info", "simulated-badge")] : null,
          ),
      },
      { label: t("center.pcapi_url"), render: (c) => h("code", { text: c.pcapi_url }) },
      { label: t("center.contact"), render: (c) => `${c.contactname} ${c.contactphone}` },
      { label: t("center.period"), render: (c) => `${dash(c.enable_date)} ~ ${dash(c.expire_date)}` },
      {
        label: t("common.actions"),
        class: "actions",
        render: (c) => [
          ["devices", "clusters", "components"].map((page) => centerLink(c, page)),
          ctx.isAdmin ? button(t("action.edit"), () => edit(c), { testid: "center-edit" }) : null,
          ctx.isAdmin
            ? button(t("action.delete"), (e) => remove(c, e.currentTarget), { kind: "danger", testid: "center-delete" })
            : null,
        ],
      },
    ];
  }

  function edit(center) {
    const dialog = {
      title: center ? t("center.edit", { name: center.name }) : t("center.add"),
      fields: centerFields(center),
      testid: "center-dialog",
      onInput: (form) => showAgentFields(form, center ? center.simulated : form.elements.namedItem("simulated").checked),
      // Blank fields are sent as they are, so the API names what is missing; only a blank password on edit is
      // left out, which keeps the stored one.
      onSubmit: (values) =>
        center
          ? api.patch(`/api/v1/centers/${seg(center.id)}`, withoutAgent(edited(values, center), center.simulated))
          : api.post("/api/v1/centers", withoutAgent(values, values.simulated)),
    };
    return list.save(dialog, { done: center ? "toast.saved" : "toast.added" });
  }

  const remove = (center, btn) =>
    list.remove(btn, {
      path: `/api/v1/centers/${seg(center.id)}`,
      name: center.name,
      question: t("center.confirmDelete", { name: center.name }),
    });

  await list.load();
}
