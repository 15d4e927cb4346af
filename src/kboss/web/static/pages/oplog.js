// Follow an operation's log as server-sent events: `log` (one line), `progress` (JSON), `end` (JSON).
// EventSource reconnects by itself after a network drop; that is wanted a few times, not forever, and never after
// `end` (the server closes the stream then, which would otherwise look like a drop).

import { t } from "../i18n.js";
import { seg } from "../api.js";

const MAX_RETRIES = 3;

export function followLog(opId, { line, progress, end, status }) {
  let failures = 0;
  let finished = false;
  status(t("op.following"));
  const source = new EventSource(`/api/v1/operations/${seg(opId)}/log?follow=1`, { withCredentials: true });
  const parse = (event) => {
    try {
      return JSON.parse(event.data);
    } catch {
      return {};
    }
  };
  source.addEventListener("open", () => {
    failures = 0;
  });
  source.addEventListener("log", (event) => line(event.data));
  source.addEventListener("progress", (event) => progress(parse(event)));
  source.addEventListener("end", (event) => {
    finished = true;
    source.close();
    const info = parse(event);
    end(info);
    status(t("op.ended", { state: t(`op.state.${info.state}`) }));
  });
  source.addEventListener("error", () => {
    if (finished) return;
    failures += 1;
    // CLOSED: the server refused the stream (404, 401...); the browser will not retry on its own.
    if (source.readyState === EventSource.CLOSED || failures > MAX_RETRIES) {
      source.close();
      status(t("op.followFailed"));
    } else {
      status(t("op.reconnecting", { n: failures }));
    }
  });
  return () => source.close();
}
