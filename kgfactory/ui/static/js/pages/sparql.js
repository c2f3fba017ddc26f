// SPARQL console over GET|POST /sparql: the ontology's prefixes pre-filled, SELECT/ASK results as a table,
// CONSTRUCT/DESCRIBE as Turtle, and downloads as CSV, JSON or Turtle (chosen by the Accept header).
import {call, getJSON} from "../api.js";
import {clear, download, errorBox, h, table} from "../dom.js";
import {editor, History} from "../editor.js";

const BODY = `# kgfv:, prov:, dcterms:, rdf:, rdfs:, skos:, owl: and xsd: are declared by the server
SELECT ?entity ?name ?class WHERE {
  ?entity a kgfv:Entity ; rdfs:label ?name ; a ?class .
  FILTER(STRSTARTS(STR(?class), STR(kgf:)))
}
ORDER BY ?name
LIMIT 100`;

const DOWNLOADS = [["CSV", "text/csv", "csv"], ["JSON", "application/sparql-results+json", "json"],
                   ["Turtle", "text/turtle", "ttl"]];

function prefixes(onto) {
  const own = Object.entries(onto.prefixes || {}).filter(([p]) => !["xml", "rdf", "rdfs", "owl", "xsd", "skos"].includes(p));
  return own.map(([p, iri]) => `PREFIX ${p}: <${iri}>`).join("\n");
}

const ENTITY = "urn:kgf:entity:";

/** A result term: IRIs shortened by the ontology's prefixes (full IRI on hover), entities linked to their page. */
function shorten(namespaces, iri) {
  for (const [p, ns] of namespaces) if (iri.startsWith(ns) && iri.length > ns.length) return `${p}:${iri.slice(ns.length)}`;
  return iri;
}

export async function mount(view) {
  const history = new History("kgf.sparqlHistory");
  const onto = await getJSON("/v1/ontology").catch(() => ({}));
  const run = h("button", {type: "button", class: "primary", id: "run-sparql"}, "Run");
  const meta = h("div", {class: "muted small", id: "sparql-meta"});
  const out = h("div", {class: "result", id: "sparql-result"});
  const edBox = h("div", {class: "editor"});
  const hist = history.widget((q) => cm.setValue(q));
  const dl = DOWNLOADS.map(([label, accept, ext]) => h("button", {type: "button", class: "small", dataset: {download: ext},
    onclick: () => save(accept, ext)}, label));

  view.append(h("h1", {}, "SPARQL"),
    h("p", {class: "muted"}, "SPARQL 1.1 over this tenant's graph and the ontology (read-only). Ctrl+Enter runs."),
    edBox,
    h("div", {class: "toolbar"}, run, hist, h("span", {class: "spacer"}), h("span", {class: "muted small"}, "download "), dl),
    meta, out);
  const namespaces = Object.entries(onto.prefixes || {}).sort((a, b) => b[1].length - a[1].length);
  const term = (t) => {
    if (!t) return "";
    if (t.type !== "uri") return t.value;
    if (t.value.startsWith(ENTITY)) return h("a", {href: `#/entity/${encodeURIComponent(t.value.slice(ENTITY.length))}`, title: t.value}, t.value);
    return h("span", {title: t.value}, shorten(namespaces, t.value));
  };
  const cm = editor(edBox, {mode: "sparql", value: history.all()[0] || `${prefixes(onto)}\n\n${BODY}`, onRun: () => go()});

  const post = (accept) => call("/sparql", {method: "POST", accept,
    body: new URLSearchParams({query: cm.getValue()})});

  async function save(accept, ext) {
    try {
      const resp = await post(accept);
      download(`results.${ext}`, await resp.text(), resp.headers.get("content-type") || accept);
    } catch (err) {
      clear(out, errorBox(err));
    }
  }

  async function go() {
    if (!cm.getValue().trim()) return;
    history.push(cm.getValue());
    hist.refresh();
    run.disabled = true;
    view.dataset.state = "running";
    clear(meta, "running…");
    const t0 = performance.now();
    try {
      const resp = await post("application/sparql-results+json, text/turtle;q=0.9");
      const ctype = resp.headers.get("content-type") || "";
      const ms = Math.round(performance.now() - t0);
      if (ctype.includes("json")) {
        const res = await resp.json();
        if (typeof res.boolean === "boolean") {
          clear(meta, `ASK · ${ms} ms`);
          clear(out, h("p", {class: "boolean"}, String(res.boolean)));
        } else {
          const vars = res.head.vars;
          const rows = res.results.bindings.map((b) => vars.map((v) => term(b[v])));
          clear(meta, `${rows.length} result${rows.length === 1 ? "" : "s"} · ${ms} ms`);
          clear(out, table(vars, rows));
        }
      } else {
        const text = await resp.text();
        clear(meta, `${ctype.split(";")[0]} · ${ms} ms`);
        clear(out, h("pre", {class: "turtle"}, text));
      }
      view.dataset.state = "done";
    } catch (err) {
      clear(meta);
      clear(out, errorBox(err));
      view.dataset.state = "error";
    } finally {
      run.disabled = false;
    }
  }
  run.addEventListener("click", go);
}
