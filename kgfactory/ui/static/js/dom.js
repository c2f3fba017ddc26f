// A tiny element builder and shared widgets (tables, messages); text always goes in as text, never as HTML.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function errorBox(err) {
  return h("div", {class: "error", role: "alert"}, String(err && err.toString ? err.toString() : err));
}

export function cellText(v) {
  if (v === null || v === undefined) return "";
  if (typeof v === "object") {
    if (Array.isArray(v._labels)) return `(${v.name ?? v.id ?? v._id}:${v._labels.filter((l) => l !== "Entity").join(":") || "node"})`;
    if (v._type) return `[:${v._type}]`;
    return JSON.stringify(v);
  }
  return String(v);
}

/** A table of rows (arrays) under column names. */
export function table(columns, rows, {className = "grid"} = {}) {
  return h("table", {class: className},
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", {}, c)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((v) => h("td", {}, v instanceof Node ? v : cellText(v)))))));
}

export function field(label, input) {
  return h("label", {class: "field"}, h("span", {}, label), input);
}

export function download(name, text, type) {
  const url = URL.createObjectURL(new Blob([text], {type}));
  const a = h("a", {href: url, download: name});
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
