// Calls to the kgfactory HTTP API with the signed-in key; errors come back as ApiError with the server's message.
const KEY = "kgf.apiKey";
export const ROOT = document.documentElement.dataset.root || "";

export class ApiError extends Error {
  constructor(status, type, message, requestId) {
    super(message);
    this.status = status;
    this.type = type;
    this.requestId = requestId;
  }
  toString() {
    return `${this.status} ${this.type}: ${this.message}` + (this.requestId ? ` (request ${this.requestId})` : "");
  }
}

export const session = {
  get key() { return sessionStorage.getItem(KEY) || ""; },
  set key(v) { v ? sessionStorage.setItem(KEY, v) : sessionStorage.removeItem(KEY); },
  me: null,  // GET /v1/whoami of the key: {key_id, name, tenant, roles}
  can(permission) {  // the server's grants (api/keys.py GRANTS): reader < analyst; ingester; admin all
    const roles = (this.me && this.me.roles) || [];
    const grants = {read: ["reader", "analyst", "ingester", "admin"], analyse: ["analyst", "admin"],
                    ingest: ["ingester", "admin"], admin: ["admin"]};
    return roles.some((r) => (grants[permission] || []).includes(r));
  },
};

function headers(extra = {}) {
  return session.key ? {Authorization: `Bearer ${session.key}`, ...extra} : extra;
}

async function failure(resp) {
  let type = "http_error", message = resp.statusText || `HTTP ${resp.status}`, rid = resp.headers.get("x-request-id");
  const text = await resp.text();
  try {
    const body = JSON.parse(text);
    if (body && body.error) {
      ({type = type, message = message} = body.error);
      rid = body.error.request_id || rid;
    } else if (body && body.detail) {
      message = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    }
  } catch (_) {
    if (text) message = text.slice(0, 500);
  }
  return new ApiError(resp.status, type, message, rid);
}

/** fetch(path) under the app's root with the key; resolves to the Response when ok, else throws ApiError. */
export async function call(path, {method = "GET", json, body, accept, signal} = {}) {
  const h = headers(accept ? {Accept: accept} : {});
  if (json !== undefined) {
    h["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  }
  const resp = await fetch(ROOT + path, {method, headers: h, body, signal});
  if (!resp.ok) throw await failure(resp);
  return resp;
}

export async function getJSON(path, opts) { return (await call(path, opts)).json(); }

export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") u.set(k, v);
  return u.toString();
}

/** POST a JSON body and read the server-sent events answer: onEvent(name, data) for each event. */
export async function stream(path, json, onEvent, signal) {
  const resp = await call(path, {method: "POST", json, accept: "text/event-stream", signal});
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  for (;;) {
    const {value, done} = await reader.read();
    if (value) buf += decoder.decode(value, {stream: true});
    let cut;
    while ((cut = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
      }
      let parsed = data.join("\n");
      try { parsed = JSON.parse(parsed); } catch (_) { /* keep text */ }
      onEvent(event, parsed);
    }
    if (done) break;
  }
}
