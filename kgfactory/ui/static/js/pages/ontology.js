// Ontology: the class tree with instance counts, the properties with domain and range, and the quarantine
// (what extraction found that the ontology could not place).
import {getJSON} from "../api.js";
import {cellText, clear, errorBox, h, table} from "../dom.js";
import {classColour, swatch} from "../graph.js";

// the quarantine's telling fields first (an edge: source -type-> target and why the ontology refused it)
const PREFERRED = ["kind", "source_name", "source_class", "type", "target_name", "target_class", "reason", "doc_id"];

const XSD = "http://www.w3.org/2001/XMLSchema#";

function terms(v) {  // a domain or range: a class name, a list of them, or an XSD datatype IRI
  const list = Array.isArray(v) ? v : v === null || v === undefined ? [] : [v];
  return list.map((t) => String(t).replace(XSD, "xsd:")).join(", ") || "any";
}

function tree(classes) {
  const kids = new Map();
  for (const c of classes) {
    const p = c.parent || "";
    if (!kids.has(p)) kids.set(p, []);
    kids.get(p).push(c);
  }
  const names = new Set(classes.map((c) => c.name));
  const roots = classes.filter((c) => !c.parent || !names.has(c.parent));
  const branch = (items, depth) => h("ul", {class: depth ? "tree" : "tree root"}, items
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((c) => h("li", {dataset: {class: c.name}},
      swatch(h, classColour(c.name)), h("strong", {}, c.name), " ",
      h("span", {class: "count", title: "instances (with its subclasses')"},
        c.total !== undefined && c.total !== c.count ? `${c.count ?? 0} · ${c.total}` : String(c.count ?? 0)),
      c.comment ? h("span", {class: "muted small"}, ` ${c.comment}`) : null,
      depth < 32 && kids.has(c.name) ? branch(kids.get(c.name), depth + 1) : null)));
  return branch(roots, 0);
}

export async function mount(view) {
  const quarantine = h("div", {id: "quarantine"});
  const [onto] = await Promise.all([getJSON("/v1/ontology/classes")]);
  view.append(h("h1", {}, "Ontology"),
    h("div", {class: "ontology-layout"},
      h("div", {class: "card"}, h("h3", {}, `Classes (${onto.classes.length})`), tree(onto.classes)),
      h("div", {class: "card"}, h("h3", {}, `Properties (${onto.properties.length})`),
        table(["property", "kind", "domain", "range"], onto.properties.map((p) => [p.name, p.kind, terms(p.domain), terms(p.range)])))),
    h("div", {class: "card"}, h("h3", {}, "Quarantine"), quarantine));
  try {
    const q = await getJSON("/v1/ontology/quarantine?limit=100");
    const keys = new Set(q.items.flatMap((it) => Object.keys(it)));
    const cols = PREFERRED.some((c) => keys.has(c)) ? PREFERRED.filter((c) => keys.has(c)) : [...keys].slice(0, 8);
    clear(quarantine, h("div", {class: "muted small"}, `${q.total} quarantined, ${q.items.length} shown`),
      q.items.length ? table(cols, q.items.map((it) => cols.map((c) => cellText(it[c])))) : h("p", {class: "muted"}, "Nothing quarantined."));
  } catch (err) {
    clear(quarantine, errorBox(err));
  }
}
