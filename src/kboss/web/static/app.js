// The console shell: session, hash router, navigation, language switch. Pages live in ./pages/*.js and are
// loaded on first visit; each exports `render(ctx)` and may return a cleanup function (timers, streams).

import { api, UNAUTHENTICATED } from "./api.js";
import { applyStatic, getLang, onLangChange, setLang, t } from "./i18n.js";
import { clear, clearToasts, h, spinner, toastError } from "./ui.js";

// Pages that need no center come first; `center` pages read the center id from the path (or pick one).
const ROUTES = [
  { re: /^\/login$/, page: "login", public: true },
  { re: /^\/centers$/, page: "centers", nav: "centers" },
  { re: /^\/devices(?:\/([^/]+))?$/, page: "devices", nav: "devices" },
  { re: /^\/clusters(?:\/([^/]+))?$/, page: "clusters", nav: "clusters" },
  { re: /^\/instances(?:\/([^/]+))?$/, page: "instances", nav: "instances" },
  { re: /^\/components(?:\/([^/]+))?$/, page: "components", nav: "components" },
  { re: /^\/calculator(?:\/([^/]+))?$/, page: "calculator", nav: "calculator" },
  { re: /^\/labels$/, page: "labels", nav: "labels" },
  { re: /^\/buy$/, page: "buy", nav: "buy" },
  { re: /^\/operations(?:\/([^/]+))?$/, page: "operations", nav: "operations" },
  { re: /^\/audit$/, page: "audit", nav: "audit" },
  { re: /^\/customers(?:\/([^/]+))?$/, page: "customers", nav: "customers" },
  { re: /^\/account$/, page: "account", nav: "account" },
];
const NAV = [
  ["account", "#/account"],
  ["centers", "#/centers"],
  ["devices", "#/devices"],
  ["clusters", "#/clusters"],
  ["instances", "#/instances"],
  ["components", "#/components"],
  ["calculator", "#/calculator"],
  ["labels", "#/labels"],
  ["buy", "#/buy"],
  ["operations", "#/operations"],
  ["customers", "#/customers", "admin"],
  ["audit", "#/audit", "admin"], // a third item: only this role sees it in the menu
];
const HOME = "/centers";
// A customer org (`/auth/me`'s `org_kind`) buys from its provider: the provider's own records are 404s to it.
const PROVIDER_ONLY = new Set(["centers", "devices", "clusters", "labels", "operations", "customers", "audit"]);
const CUSTOMER_ONLY = new Set(["account"]);
const isCustomer = () => me?.org_kind === "customer";
const home = () => (isCustomer() ? "/account" : HOME);
const hidden = (key) => (isCustomer() ? PROVIDER_ONLY : CUSTOMER_ONLY).has(key);
const inMenu = ([key, , role]) => (!role || me?.role === role) && !hidden(key);

const view = document.getElementById("view");
const nav = document.getElementById("nav");
const navToggle = document.querySelector(".nav-toggle");
const backdrop = document.getElementById("nav-backdrop");
let me = null;
let cleanup = null;
let renderSeq = 0;

function currentPath() {
  const raw = location.hash.replace(/^#/, "") || home();
  const [path, query = ""] = raw.split("?");
  return { path, query: new URLSearchParams(query) };
}

// Only a path of this console, never a URL elsewhere or back to the login page.
function safeNext(next) {
  return next && /^\/[a-z]/.test(next) && !next.startsWith("/login") ? next : home();
}

export function go(path) {
  location.hash = `#${path}`;
}

function renderNav(active) {
  clear(
    nav,
    h(
      "ul",
      {},
      NAV.filter(inMenu).map(([key, href]) =>
        h(
          "li",
          {},
          h(
            "a",
            {
              href,
              class: key === active ? "active" : "",
              "aria-current": key === active ? "page" : undefined,
              "data-testid": `nav-${key}`,
            },
            t(`nav.${key}`),
          ),
        ),
      ),
    ),
  );
}

function setNavOpen(open) {
  document.body.classList.toggle("nav-open", open);
  navToggle.setAttribute("aria-expanded", String(open));
  backdrop.hidden = !open;
}

function renderUser() {
  const who = document.getElementById("whoami");
  const logout = document.getElementById("logout");
  who.hidden = logout.hidden = !me;
  document.body.classList.toggle("signed-out", !me);
  if (me) who.textContent = `${me.username} · ${t(me.role === "admin" ? "role.admin" : "role.member")}`;
}

async function route() {
  const seq = ++renderSeq;
  const { path, query } = currentPath();
  const match = ROUTES.map((r) => [r, r.re.exec(path)]).find(([, m]) => m);
  if (!match) return go(home());
  const [spec, found] = match;
  if (!spec.public && !me) return go(`/login?next=${encodeURIComponent(path)}`);
  if (spec.public && me) return go(safeNext(query.get("next")));
  if (me && hidden(spec.nav)) return go(home()); // e.g. a customer sent to "/centers" after signing in
  if (cleanup) {
    try {
      cleanup();
    } catch (error) {
      console.warn(error);
    }
    cleanup = null;
  }
  setNavOpen(false);
  clearToasts();
  renderNav(spec.nav);
  renderUser();
  clear(view, spinner());
  try {
    const module = await import(`./pages/${spec.page}.js`);
    if (seq !== renderSeq) return; // the user moved on while the module loaded
    clear(view);
    const ctx = {
      view,
      id: found[1] ? decodeURIComponent(found[1]) : null,
      query,
      me,
      go,
      isAdmin: me?.role === "admin",
      signedIn,
    };
    const result = await module.render(ctx);
    if (seq !== renderSeq) {
      if (typeof result === "function") result();
      return;
    }
    cleanup = typeof result === "function" ? result : null;
    view.focus({ preventScroll: true });
  } catch (error) {
    if (seq !== renderSeq) return;
    clear(
      view,
      h(
        "div",
        { class: "notice notice-error", role: "alert", "data-testid": "page-error" },
        error.message || String(error),
      ),
    );
    toastError(error);
  }
}

// Called by the login page with the answer of /auth/me.
function signedIn(user) {
  me = user;
}

async function loadSession() {
  try {
    me = await api.get("/api/v1/auth/me");
  } catch (error) {
    me = null;
    if (error.status !== 401) toastError(error);
  }
}

function wireShell() {
  const lang = document.getElementById("lang");
  lang.value = getLang();
  lang.addEventListener("change", () => setLang(lang.value));
  onLangChange(() => {
    applyStatic(document);
    route();
  });
  navToggle.addEventListener("click", () => setNavOpen(!document.body.classList.contains("nav-open")));
  backdrop.addEventListener("click", () => setNavOpen(false));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && document.body.classList.contains("nav-open")) setNavOpen(false);
  });
  document.getElementById("logout").addEventListener("click", async () => {
    try {
      await api.post("/api/v1/auth/logout");
    } catch (error) {
      toastError(error);
    }
    me = null;
    go("/login");
  });
  window.addEventListener(UNAUTHENTICATED, () => {
    if (!me) return;
    me = null;
    toastError(new Error(t("auth.expired")));
    go(`/login?next=${encodeURIComponent(currentPath().path)}`);
  });
  window.addEventListener("hashchange", route);
}

async function boot() {
  applyStatic(document);
  wireShell();
  await loadSession();
  route();
}

boot();
