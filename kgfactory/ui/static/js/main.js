// The explorer's shell: sign-in state, the navigation and the hash router (#/page/arg) that mounts one view.
import {ApiError, getJSON, session} from "./api.js";
import {clear, errorBox, h} from "./dom.js";

const PAGES = {
  signin: () => import("./pages/signin.js"),
  ask: () => import("./pages/ask.js"),
  entities: () => import("./pages/entities.js"),
  entity: () => import("./pages/entities.js"),
  cypher: () => import("./pages/cypher.js"),
  sparql: () => import("./pages/sparql.js"),
  documents: () => import("./pages/documents.js"),
  document: () => import("./pages/documents.js"),
  ontology: () => import("./pages/ontology.js"),
};

const main = document.getElementById("main");
let current = null;  // the mounted view's cleanup

export function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function showWho() {
  const signed = !!session.me;
  document.getElementById("nav").hidden = !signed;
  document.getElementById("who").hidden = !signed;
  if (!signed) return;
  const me = session.me;
  document.getElementById("who-text").textContent = `${me.name} · tenant ${me.tenant} · ${me.roles.join(", ")}`;
  for (const a of document.querySelectorAll("#nav a[data-needs]")) a.hidden = !session.can(a.dataset.needs);
}

/** Check the stored key with GET /v1/whoami; false (and the key dropped) when the server refuses it. */
export async function signIn(key) {
  session.key = key;
  try {
    session.me = await getJSON("/v1/whoami");
  } catch (e) {
    session.key = "";
    session.me = null;
    throw e;
  }
  showWho();
  return session.me;
}

export function signOut() {
  session.key = "";
  session.me = null;
  showWho();
  go("#/signin");
}

async function route() {
  const [, name = "ask", ...rest] = (location.hash || "#/ask").slice(1).split("/");
  const arg = rest.length ? decodeURIComponent(rest.join("/")) : undefined;
  if (!session.me && name !== "signin") {
    if (session.key) {
      try { await signIn(session.key); } catch (_) { return go("#/signin"); }
    } else {
      return go("#/signin");
    }
  }
  const load = PAGES[name] || PAGES.ask;
  for (const a of document.querySelectorAll("#nav a[data-page]")) {
    a.classList.toggle("active", a.dataset.page === name || (name === "entity" && a.dataset.page === "entities") ||
                                 (name === "document" && a.dataset.page === "documents"));
  }
  if (current) { try { current(); } catch (_) { /* the old view is gone anyway */ } current = null; }
  const view = h("section", {class: "view", dataset: {page: name}});
  clear(main, view);
  document.title = `kgfactory · ${name}`;
  try {
    const mod = await load();
    current = (await mod.mount(view, {name, arg, go, signIn, signOut})) || null;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return signOut();
    view.append(errorBox(e));
  }
}

document.getElementById("signout").addEventListener("click", signOut);
window.addEventListener("hashchange", route);
route();
