// Devices (算力设备) of one center: list with idle/occupied, add, edit, delete, host probe.

import { api, seg } from "../api.js";
import { t } from "../i18n.js";
import { badge, busy, button, dash, h, pageHeader, toastError } from "../ui.js";
import { openCenterPage, withoutBlank } from "./common.js";
import { listPage } from "./list.js";
import { probeDevice } from "./probe.js";

const SECRETS = ["adminpwd", "ssh_key"];

function deviceFields(device, probed = {}) {
  const d = {
    sshport: 22,
    adminuser: "root",
    devicetype: "1",
    role: "worker",
    node_status: "0",
    cpu_model: "STANDARD",
    memory_model: "STANDARD",
    gpu_model: "STANDARD",
    cpu_stock: 0,
    memory_stock: 0,
    sysdisk_stock: 0,
    datadisk_stock: 0,
    gpu_stock: 0,
    ...(device || {}),
    ...probed,
  };
  const editing = Boolean(device);
  const num = (name, label) => ({ name, label, type: "number", min: 0, step: 1, value: d[name], inputmode: "numeric" });
  // pairs: [value, message key of its name].
  const choice = (name, label, pairs) => {
    const options = pairs.map(([value, key]) => [value, t(key)]);
    return { name, label, type: "select", value: d[name], options };
  };
  return [
    { name: "name", label: t("device.name"), required: true, value: d.name },
    { name: "ip", label: t("device.ip"), required: true, value: d.ip, placeholder: "192.168.0.8" },
    { name: "sshport", label: t("device.sshport"), type: "number", min: 1, value: d.sshport },
    { name: "external_ip", label: t("device.external_ip"), value: d.external_ip === "未设置" ? "" : d.external_ip },
    choice("devicetype", t("device.type"), [["1", "device.type1"], ["0", "device.type0"]]),
    choice("role", t("device.role"), [["worker", "device.worker"], ["master", "device.master"]]),
    { name: "adminuser", label: t("device.adminuser"), required: true, value: d.adminuser },
    {
      name: "adminpwd",
      label: t("device.adminpwd"),
      type: "password",
      autocomplete: "new-password",
      hint: editing ? t("form.secretKeep") : t("device.authHint"),
    },
    {
      name: "ssh_key",
      label: t("device.ssh_key"),
      type: "textarea",
      rows: 3,
      wide: true,
      placeholder: "-----BEGIN OPENSSH PRIVATE KEY-----",
      hint: editing ? t("form.secretKeep") : undefined,
    },
    { name: "cpu_model", label: t("device.cpu_model"), value: d.cpu_model },
    num("cpu_stock", t("device.cpu_stock")),
    { name: "memory_model", label: t("device.memory_model"), value: d.memory_model },
    num("memory_stock", t("device.memory_stock")),
    num("sysdisk_stock", t("device.sysdisk_stock")),
    num("datadisk_stock", t("device.datadisk_stock")),
    { name: "gpu_model", label: t("device.gpu_model"), value: d.gpu_model },
    num("gpu_stock", t("device.gpu_stock")),
    choice("node_status", t("device.status"), [["0", "device.idle"], ["1", "device.occupied"]]),
    { name: "enable_date", label: t("device.enable_date"), type: "date", value: d.enable_date },
    { name: "export_date", label: t("device.export_date"), type: "date", value: d.export_date },
  ];
}

function fill(form, values) {
  for (const [name, value] of Object.entries(values)) {
    const control = form.elements.namedItem(name);
    if (control) {
      control.value = value;
      control.classList.add("probed");
    }
  }
}

export async function render(ctx) {
  const page = await openCenterPage(ctx, "devices");
  if (!page) return;
  const { head, center } = page;
  const add = ctx.isAdmin ? button(t("device.add"), () => edit(null), { kind: "primary", testid: "device-add" }) : null;
  head.prepend(pageHeader(t("device.title", { center: center.name }), add));
  if (center.simulated)
    head.append(h("p", { class: "notice", "data-testid": "simulated-note", text: t("device.simulatedNote") }));
  const list = listPage(page.body, {
    path: `/api/v1/centers/${seg(center.id)}/devices`,
    columns,
    above: summary,
    empty: t("device.none"),
    testid: "devices-table",
    rowTestid: (d) => `device-${d.name}`,
  });

  function summary(rows) {
    const idle = rows.filter((d) => d.node_status === "0").length;
    return h("p", { class: "muted", "data-testid": "device-summary" }, t("device.summary", { total: rows.length, idle }));
  }

  function columns() {
    return [
      { label: t("device.name"), render: (d) => h("strong", { text: d.name }) },
      {
        label: t("device.address"),
        render: (d) => [
          h("code", { text: `${d.ip}:${d.sshport}` }),
          d.external_ip && d.external_ip !== "未设置" ? h("small", { class: "sub", text: d.external_ip }) : null,
        ],
      },
      { label: t("device.kind"), render: (d) => `${t(`device.type${d.devicetype}`)} · ${t(`device.${d.role}`)}` },
      {
        label: t("device.status"),
        render: (d) =>
          d.node_status === "1"
            ? badge(t("device.occupied"), "warn", "status-occupied")
            : badge(t("device.idle"), "ok", "status-idle"),
      },
      { label: "CPU", render: (d) => `${d.cpu_model} × ${d.cpu_stock}` },
      { label: t("device.memory"), render: (d) => `${d.memory_stock} GiB` },
      { label: t("device.disk"), render: (d) => `${d.sysdisk_stock} + ${d.datadisk_stock} GiB` },
      { label: "GPU", render: (d) => (d.gpu_stock ? `${d.gpu_model} × ${d.gpu_stock}` : "—") },
      { label: t("device.cluster"), render: (d) => dash(d.clusterid) },
      {
        label: t("common.actions"),
        class: "actions",
        render: (d) =>
          ctx.isAdmin
            ? [
                button(t("device.probe"), (e) => probeRow(d, e.currentTarget), { testid: "device-probe" }),
                button(t("action.edit"), () => edit(d), { testid: "device-edit" }),
                button(t("action.delete"), (e) => remove(d, e.currentTarget), {
                  kind: "danger",
                  testid: "device-delete",
                }),
              ]
            : "—",
      },
    ];
  }

  async function probeRow(device, btn) {
    try {
      await edit(device, await busy(btn, () => probeDevice(device.id)));
    } catch (error) {
      toastError(error);
    }
  }

  // `found`: a probe's answer ({fields, simulated}) to open the dialog with.
  function edit(device, found = null) {
    const note = h("p", { class: "notice", "data-testid": "probe-note", hidden: !found });
    if (found) showProbed(note, found);
    const extra = device ? [probeTools(device, note), note] : [note];
    const dialog = {
      title: device ? t("device.edit", { name: device.name }) : t("device.add"),
      fields: deviceFields(device, found?.fields || {}),
      extra: h("div", {}, extra),
      testid: "device-dialog",
      onSubmit: (values) =>
        device
          ? api.patch(`/api/v1/devices/${seg(device.id)}`, withoutBlank(values, SECRETS))
          : api.post("/api/v1/devices", { ...withoutBlank(values, SECRETS), cpcid: center.id }),
    };
    return list.save(dialog, { done: device ? "toast.saved" : "toast.added" });
  }

  const remove = (device, btn) =>
    list.remove(btn, {
      path: `/api/v1/devices/${seg(device.id)}`,
      name: device.name,
      question: t("device.confirmDelete", { name: device.name }),
    });

  await list.load();
}

function showProbed(note, answer) {
  note.textContent = t(answer.simulated ? "device.probedSimulated" : "device.probed");
  note.className = "notice";
  note.removeAttribute("role");
  note.hidden = false;
}

// Probing from inside the dialog fills the hardware fields in place; nothing is saved until "保存".
function probeTools(device, note) {
  const probeBtn = button(
    t("device.probe"),
    async () => {
      try {
        const answer = await busy(probeBtn, () => probeDevice(device.id));
        fill(probeBtn.form, answer.fields);
        showProbed(note, answer);
      } catch (error) {
        // The site agent does not answer, the login is refused...: said as an error, the fields left as typed.
        note.textContent = error.message;
        note.className = "notice notice-error";
        note.setAttribute("role", "alert");
        note.hidden = false;
      }
    },
    { testid: "dialog-probe" },
  );
  return h("div", { class: "inline-tools" }, probeBtn, h("small", { class: "hint", text: t("device.probeHint") }));
}
