// Host probe of a device: POST /api/v1/devices/{id}/probe, through the center's site agent. A platform without the
// route answers a bare 404, said plainly (the operator types the figures in). A simulated center's answer is marked
// `simulated` (made-up figures of a plausible machine, or those recorded): the dialog says so.

import { api, seg } from "../api.js";
import { t } from "../i18n.js";

export class ProbeUnavailable extends Error {}

// The probe's answer as device form fields. Accepts the device's own field names, or the site agent's host facts
// (cpu_cores, memory_mib, disks[{size_gib}], gpus[{model, count}]), bare or wrapped in `data` / `facts`.
export function probeFields(answer) {
  const facts = answer?.facts || answer?.data || answer || {};
  const out = {};
  const gib = (value) => String(Math.round(Number(value)));
  if (facts.cpu_model) out.cpu_model = facts.cpu_model;
  if (facts.cpu_stock ?? facts.cpu_cores) out.cpu_stock = String(facts.cpu_stock ?? facts.cpu_cores);
  if (facts.memory_stock != null) out.memory_stock = String(facts.memory_stock);
  else if (facts.memory_mib != null) out.memory_stock = gib(facts.memory_mib / 1024);
  if (facts.sysdisk_stock != null) out.sysdisk_stock = String(facts.sysdisk_stock);
  if (facts.datadisk_stock != null) out.datadisk_stock = String(facts.datadisk_stock);
  if (Array.isArray(facts.disks) && facts.disks.length && out.sysdisk_stock === undefined) {
    // The first disk holds the system; the rest are data disks.
    const [system, ...data] = facts.disks;
    out.sysdisk_stock = gib(system.size_gib);
    out.datadisk_stock = gib(data.reduce((sum, d) => sum + Number(d.size_gib || 0), 0));
  }
  if (facts.gpu_model) out.gpu_model = facts.gpu_model;
  if (facts.gpu_stock != null) out.gpu_stock = String(facts.gpu_stock);
  if (Array.isArray(facts.gpus) && facts.gpus.length && out.gpu_stock === undefined) {
    out.gpu_model = facts.gpus[0].model;
    out.gpu_stock = String(facts.gpus.reduce((sum, g) => sum + Number(g.count || 0), 0));
  }
  return out;
}

// {fields, simulated}: the form fields found, and whether they come from a simulated center.
export async function probeDevice(deviceId) {
  try {
    const answer = await api.post(`/api/v1/devices/${seg(deviceId)}/probe`);
    const facts = answer?.facts || answer?.data || answer || {};
    return { fields: probeFields(answer), simulated: facts.simulated === true };
  } catch (error) {
    if (error.missingRoute) throw new ProbeUnavailable(t("device.probeMissing"));
    throw error;
  }
}
