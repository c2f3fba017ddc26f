// Cypher console: read-only queries over this tenant's view (POST /v1/cypher), results as a table or, when nodes
// and relationships come back, as a graph; row cap and timeout shown; API errors shown as returned.
import {call} from "../api.js";
import {clear, errorBox, field, h, table} from "../dom.js";
import {editor, History} from "../editor.js";
import {GraphView} from "../graph.js";

const EXAMPLE = "MATCH (a:Entity)-[r]->(b:Entity)\nWHERE type(r) <> 'CO_OCCURS'\nRETURN a, r, b\nLIMIT 50";
const GENERIC = new Set(["Entity", "Chunk", "Document"]);

function nodeKey(v) { return String(v._id ?? v.id); }

/** Nodes and relationships found anywhere in the rows (nodes carry _labels, relationships _type, paths _nodes). */
export function graphOf(rows) {
  const nodes = new Map(), edges = [];
  const asNode = (v) => {
    const labels = v._labels.filter((l) => !GENERIC.has(l));
    const n = {id: nodeKey(v), name: v.name ?? v.title ?? v.id ?? v._id, label: v.label ?? labels[labels.length - 1] ?? v._labels[0]};
    nodes.set(n.id, n);
    return n;
  };
  for (const row of rows) {
    const seq = [];  // the row's nodes and relationships in order, to place a relationship without _start/_end
    const walk = (v, depth) => {
      if (!v || typeof v !== "object" || depth > 8) return;
      if (Array.isArray(v)) return v.forEach((x) => walk(x, depth + 1));
      if (Array.isArray(v._labels)) return seq.push(asNode(v));
      if (typeof v._type === "string") return seq.push({rel: v});
      if (Array.isArray(v._nodes)) { walk(v._nodes, depth + 1); walk(v._relationships || [], depth + 1); return; }
      Object.values(v).forEach((x) => walk(x, depth + 1));
    };
    walk(row, 0);
    seq.forEach((item, i) => {
      if (!item.rel) return;
      const r = item.rel;
      let s = r._start ?? r.start, t = r._end ?? r.end;
      if (s === undefined || t === undefined) {
        s = seq[i - 1] && !seq[i - 1].rel ? seq[i - 1].id : undefined;
        t = seq[i + 1] && !seq[i + 1].rel ? seq[i + 1].id : undefined;
      }
      if (s !== undefined && t !== undefined) edges.push({id: r._id, source: String(s), target: String(t), type: r._type});
    });
  }
  return {nodes: [...nodes.values()], edges};
}

export function mount(view) {
  const history = new History("kgf.cypherHistory");
  const maxRows = h("input", {type: "number", id: "max-rows", min: 1, value: 1000, class: "narrow"});
  const timeout = h("input", {type: "number", id: "timeout-ms", min: 1, value: 5000, class: "narrow"});
  const run = h("button", {type: "button", class: "primary", id: "run-cypher"}, "Run");
  const asTable = h("button", {type: "button", class: "tab active", id: "view-table"}, "Table");
  const asGraph = h("button", {type: "button", class: "tab", id: "view-graph", disabled: true}, "Graph");
  const meta = h("div", {class: "muted small", id: "cypher-meta"});
  const out = h("div", {class: "result", id: "cypher-table"});
  const graphBox = h("div", {class: "graph big-graph", id: "cypher-graph", hidden: true});
  const edBox = h("div", {class: "editor"});
  const hist = history.widget((q) => cm.setValue(q));
  let graph = null, last = null;

  view.append(h("h1", {}, "Cypher"),
    h("p", {class: "muted"}, "Read-only Cypher over this tenant's graph (write clauses are refused). Ctrl+Enter runs."),
    edBox,
    h("div", {class: "toolbar"}, run, field("row cap", maxRows), field("timeout ms", timeout), hist,
      h("span", {class: "spacer"}), asTable, asGraph),
    meta, out, graphBox);
  const cm = editor(edBox, {mode: "cypher", value: history.all()[0] || EXAMPLE, onRun: () => go()});

  function show(which) {
    const g = which === "graph";
    asTable.classList.toggle("active", !g);
    asGraph.classList.toggle("active", g);
    out.hidden = g;
    graphBox.hidden = !g;
    if (g && last) {
      if (!graph) graph = new GraphView(graphBox);
      const {nodes, edges} = graphOf(last.rows);
      graph.set(nodes, edges);
    }
  }
  asTable.addEventListener("click", () => show("table"));
  asGraph.addEventListener("click", () => show("graph"));

  async function go() {
    const query = cm.getValue();
    if (!query.trim()) return;
    history.push(query);
    hist.refresh();
    run.disabled = true;
    view.dataset.state = "running";
    clear(meta, "running…");
    try {
      const body = {query, max_rows: Number(maxRows.value) || undefined, timeout_ms: Number(timeout.value) || undefined};
      const res = await (await call("/v1/cypher", {method: "POST", json: body})).json();
      last = res;
      const g = graphOf(res.rows);
      asGraph.disabled = !g.nodes.length;
      clear(meta, `${res.row_count} row${res.row_count === 1 ? "" : "s"}`,
        res.truncated ? h("strong", {class: "warn"}, ` · truncated at the row cap of ${body.max_rows ?? "the server's"}`) : "",
        ` · row cap ${body.max_rows ?? "server default"} · timeout ${body.timeout_ms ?? "server default"} ms`,
        ` · ${Math.round(res.elapsed_ms)} ms · tenant ${res.tenant}`,
        g.nodes.length ? ` · ${g.nodes.length} nodes, ${g.edges.length} relationships` : "");
      clear(out, res.columns.length ? table(res.columns, res.rows) : h("p", {class: "muted"}, "no columns"));
      show(graphBox.hidden ? "table" : (g.nodes.length ? "graph" : "table"));
      view.dataset.state = "done";
    } catch (err) {
      clear(meta);
      clear(out, errorBox(err));
      asGraph.disabled = true;
      show("table");
      view.dataset.state = "error";
    } finally {
      run.disabled = false;
    }
  }
  run.addEventListener("click", go);
  return () => { if (graph) graph.destroy(); };
}
