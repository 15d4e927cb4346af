// Host probe of a device: POST /api/v1/devices/{id}/probe, through the center's site agent. The answer's `facts`
// are the agent's host facts; a simulated center's are marked `simulated` (made-up figures of a plausible machine,
// or those recorded): the dialog says so.

import { api, seg } from "../api.js";

// The site agent's host facts (cpu_model, cpu_cores, memory_mib, disks[{size_gib}], gpus[{model, count}]) as
// device form fields: memory in GiB, the first disk the system's, the rest data disks, GPUs summed.
export function probeFields(facts) {
  const out = {};
  const gib = (value) => String(Math.round(Number(value)));
  if (facts.cpu_model) out.cpu_model = facts.cpu_model;
  if (facts.cpu_cores) out.cpu_stock = String(facts.cpu_cores);
  if (facts.memory_mib != null) out.memory_stock = gib(facts.memory_mib / 1024);
  if (Array.isArray(facts.disks) && facts.disks.length) {
    const [system, ...data] = facts.disks;
    out.sysdisk_stock = gib(system.size_gib);
    out.datadisk_stock = gib(data.reduce((sum, d) => sum + Number(d.size_gib || 0), 0));
  }
  if (Array.isArray(facts.gpus) && facts.gpus.length) {
    out.gpu_model = facts.gpus[0].model;
    out.gpu_stock = String(facts.gpus.reduce((sum, g) => sum + Number(g.count || 0), 0));
  }
  return out;
}

// {fields, simulated}: the form fields found, and whether they come from a simulated center.
export async function probeDevice(deviceId) {
  const { facts = {} } = await api.post(`/api/v1/devices/${seg(deviceId)}/probe`);
  return { fields: probeFields(facts), simulated: facts.simulated === true };
}
