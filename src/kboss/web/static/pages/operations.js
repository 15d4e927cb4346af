// Operations (building clusters, joining workers, draining...): the list, polled while shown, one operation's steps,
// and its live log (server-sent events from GET /api/v1/operations/{id}/log?follow=1).

import { api, seg } from "../api.js";
import { t } from "../i18n.js";
import {
  badge,
  busy,
  button,
  clear,
  dash,
  errorNotice,
  h,
  pageHeader,
  spinner,
  table,
  toast,
  toastError,
} from "../ui.js";
import { followLog } from "./oplog.js";
import { canForce, forceRemoval } from "./removal.js";

const POLL_MS = 5000;
const STATE_KIND = {
  pending: "neutral",
  running: "info",
  succeeded: "ok",
  failed: "error",
  cancelled: "warn",
  timed_out: "error",
};
const stateBadge = (state) => badge(t(`op.state.${state}`), STATE_KIND[state] || "neutral", `op-state-${state}`);

export async function render(ctx) {
  return ctx.id ? renderOne(ctx) : renderList(ctx);
}

async function renderList(ctx) {
  const list = h("div", {}, spinner());
  ctx.view.append(pageHeader(t("nav.operations")), list);
  let timer = null;
  let stopped = false;

  async function load() {
    try {
      const { rows } = await api.get("/api/v1/operations", { limit: 200 });
      clear(
        list,
        table(columns(), rows, { empty: t("op.none"), testid: "operations-table", rowTestid: (o) => `op-${o.id}` }),
      );
    } catch (error) {
      clear(list, errorNotice(error.message, "op-error"));
    }
  }

  const columns = () => [
    {
      label: t("op.kind"),
      render: (o) =>
        h(
          "a",
          { href: `#/operations/${seg(o.id)}`, "data-testid": "op-link" },
          t(`op.kind.${o.kind}`, { fallback: o.kind }),
        ),
    },
    { label: t("op.state"), render: (o) => stateBadge(o.state) },
    { label: t("op.step"), render: (o) => dash(o.current_step) },
    { label: t("op.cluster"), render: (o) => dash(o.cluster_id) },
    { label: t("op.created"), render: (o) => dash(o.created_at) },
    {
      label: t("op.error"),
      render: (o) => (o.last_error ? h("span", { class: "text-error", text: o.last_error }) : "—"),
    },
  ];

  // Poll while the page is shown; an error stays on screen (once) until the next success.
  async function tick() {
    if (stopped) return;
    await load();
    if (!stopped) timer = setTimeout(tick, POLL_MS);
  }
  await tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

async function renderOne(ctx) {
  const head = h(
    "div",
    {},
    pageHeader(t("op.title"), h("a", { class: "btn btn-secondary", href: "#/operations" }, t("op.back"))),
  );
  const detail = h("div", {}, spinner());
  const steps = h("div", { class: "op-steps" });
  const log = h("pre", { class: "op-log", "data-testid": "op-log", tabindex: "0", "aria-label": t("op.log") });
  const status = h("p", { class: "muted", "data-testid": "op-follow-status", "aria-live": "polite" });
  ctx.view.append(head, detail, h("h2", { text: t("op.steps") }), steps, h("h2", { text: t("op.log") }), status, log);

  let op;
  try {
    op = await api.get(`/api/v1/operations/${seg(ctx.id)}`);
  } catch (error) {
    // A link to an operation that is gone, or of another organisation: the API's message.
    clear(detail, errorNotice(error.message, "op-error"));
    steps.remove();
    log.remove();
    return;
  }

  function showDetail() {
    const actions = [];
    const ended = ["failed", "timed_out", "cancelled"].includes(op.state);
    if (ctx.isAdmin && ended)
      actions.push(button(t("op.retry"), (e) => act("retry", e.currentTarget), { testid: "op-retry" }));
    // A removal stopped by what force overrides (a drain that could not evict everything): offer it, explained.
    if (ctx.isAdmin && ended && canForce(op))
      actions.push(
        button(t("op.force"), (e) => forceRemoval(ctx, op, e.currentTarget), { kind: "danger", testid: "op-force" }),
        h("small", { class: "hint", text: t("op.forceHint") }),
      );
    if (ctx.isAdmin && ["pending", "running"].includes(op.state))
      actions.push(
        button(t("op.cancel"), (e) => act("cancel", e.currentTarget), { kind: "danger", testid: "op-cancel" }),
      );
    clear(
      detail,
      h(
        "dl",
        { class: "facts" },
        h("dt", { text: t("op.kind") }),
        h("dd", { text: t(`op.kind.${op.kind}`, { fallback: op.kind }) }),
        h("dt", { text: t("op.state") }),
        h("dd", {}, stateBadge(op.state)),
        h("dt", { text: t("op.step") }),
        h("dd", { text: dash(op.current_step) }),
        h("dt", { text: t("op.created") }),
        h("dd", { text: dash(op.created_at) }),
        h("dt", { text: t("op.error") }),
        h("dd", { class: op.last_error ? "text-error" : "", "data-testid": "op-last-error", text: dash(op.last_error) }),
      ),
      h("div", { class: "toolbar" }, actions),
    );
  }

  function showSteps(list) {
    clear(
      steps,
      table(
        [
          { label: t("op.step"), render: (s) => s.name },
          { label: t("op.node"), render: (s) => dash(op.device_names?.[s.node] || s.node || op.params?.node) },
          { label: t("op.state"), render: (s) => stateBadge(s.state) },
          { label: t("op.attempts"), render: (s) => String(s.attempts ?? "—") },
          { label: t("op.error"), render: (s) => (s.error ? h("span", { class: "text-error", text: s.error }) : "—") },
        ],
        list || [],
        { empty: t("op.noSteps"), testid: "op-steps" },
      ),
    );
  }

  async function act(verb, btn) {
    try {
      op = await busy(btn, () => api.post(`/api/v1/operations/${seg(op.id)}/${verb}`));
      toast(t(`op.${verb}Done`), "success");
      showDetail();
      showSteps(op.steps);
      if (verb === "retry") stop = followLog(op.id, handlers);
    } catch (error) {
      toastError(error);
    }
  }

  const handlers = {
    status: (text) => {
      status.textContent = text;
    },
    line: (text) => {
      const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
      log.append(text + "\n");
      if (atBottom) log.scrollTop = log.scrollHeight; // follow the tail unless the reader scrolled up
    },
    progress: (p) => {
      Object.assign(op, { state: p.state, current_step: p.current_step });
      showDetail();
      // The stream's steps carry fewer fields than the detail's; merge by name + node.
      const byKey = new Map((op.steps || []).map((s) => [`${s.name}@${s.node}`, s]));
      showSteps(p.steps.map((s) => ({ ...byKey.get(`${s.name}@${s.node}`), ...s })));
    },
    end: async (e) => {
      Object.assign(op, { state: e.state, last_error: e.last_error });
      showDetail();
      // The stream's steps carry no timings: the detail once more, so the finished steps show how long they took.
      try {
        op = await api.get(`/api/v1/operations/${seg(op.id)}`);
        showDetail();
        showSteps(op.steps);
      } catch {
        // What is shown stays: the end state and error came with the stream.
      }
    },
  };

  showDetail();
  showSteps(op.steps);
  let stop = followLog(op.id, handlers);
  return () => stop();
}
