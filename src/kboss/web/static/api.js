// The native API (/api/v1) over fetch. The session is the HttpOnly `kboss_session` cookie set at login, so no
// token is kept in script-readable storage; same-origin fetches send it on their own.

import { t } from "./i18n.js";

export class ApiError extends Error {
  constructor(status, message, code, data) {
    super(message);
    this.status = status;
    this.code = code;
    this.data = data;
  }
}

// Pages listen for this to go back to the login screen when the session expires mid-use.
export const UNAUTHENTICATED = "kboss:unauthenticated";

async function request(method, path, { body, query, signal } = {}) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
  }
  const init = { method, headers: { Accept: "application/json" }, credentials: "same-origin", signal };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, t("error.network"), "network");
  }
  const text = await response.text();
  let payload = null;
  if (text) {
    try {
      payload = JSON.parse(text);
    } catch {
      payload = text;
    }
  }
  if (!response.ok) throw toError(response.status, payload, path);
  return payload;
}

function toError(status, payload, path) {
  const detail = payload && typeof payload === "object" ? payload.detail : payload;
  let message;
  if (typeof detail === "string" && detail) {
    message = detail; // kboss's messages are Chinese and name the parameter: show them as they come
  } else if (Array.isArray(detail) && detail.length) {
    message = detail.map((d) => `${(d.loc || []).join(".")}: ${d.msg}`).join("; ");
  } else {
    message = t("error.http", { status });
  }
  const error = new ApiError(status, message, payload && payload.code, payload && payload.data);
  if (status === 401 && !path.startsWith("/api/v1/auth/login")) {
    window.dispatchEvent(new CustomEvent(UNAUTHENTICATED, { detail: error }));
  }
  return error;
}

export const api = {
  get: (path, query, options = {}) => request("GET", path, { ...options, query }),
  post: (path, body, options = {}) => request("POST", path, { ...options, body: body ?? {} }),
  put: (path, body) => request("PUT", path, { body: body ?? {} }),
  patch: (path, body) => request("PATCH", path, { body }),
  del: (path, query) => request("DELETE", path, { query }),
};

// A path segment from an id: ids are URL-safe already, but never trust that in a URL we build.
export const seg = (id) => encodeURIComponent(id);
