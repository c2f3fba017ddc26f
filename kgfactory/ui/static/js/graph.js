// Graph drawing with the vendored cytoscape (canvas): nodes coloured by class, edges labelled by relation type.
// The container carries data-nodes / data-edges (what is on screen) so tests and users can check the count.
// well-separated colours for the ontology's common classes; any other class gets a hue from its name's hash
const KNOWN = {Person: "#4e79a7", Organization: "#f28e2b", Company: "#e15759", Location: "#59a14f", City: "#8cd17d",
               Country: "#2e7d32", Concept: "#b07aa1", SoftwareApplication: "#edc948", CreativeWork: "#ff9da7",
               Product: "#9c755f", Technology: "#499894", Event: "#76b7b2", EducationalOrganization: "#ffbe7d",
               GovernmentOrganization: "#d37295"};

export function classColour(label) {
  if (KNOWN[label]) return KNOWN[label];
  let x = 2166136261;
  for (const ch of String(label || "")) x = Math.imul(x ^ ch.codePointAt(0), 16777619) >>> 0;
  return label ? `hsl(${x % 360}, 55%, 52%)` : "#9aa5b1";
}

const LITE_OVER = 250;  // nodes past which the graph is drawn lighter (see layout())

const STYLE = [
  {selector: "node", style: {"background-color": "data(colour)", label: "data(name)", "font-size": 10, color: "#1f2933",
    "text-valign": "bottom", "text-margin-y": 3, width: 18, height: 18, "text-wrap": "ellipsis", "text-max-width": 110,
    "border-width": 1, "border-color": "#fff"}},
  {selector: "node.focus", style: {width: 28, height: 28, "border-width": 3, "border-color": "#1f2933", "font-weight": "bold"}},
  {selector: "node:selected", style: {"border-width": 3, "border-color": "#d97706"}},
  {selector: "edge", style: {width: 1.4, "line-color": "#9aa5b1", "target-arrow-color": "#9aa5b1",
    "target-arrow-shape": "triangle", "curve-style": "bezier", label: "data(type)", "font-size": 8, color: "#52606d",
    "text-rotation": "autorotate", "text-background-color": "#fff", "text-background-opacity": 0.8,
    "text-background-padding": 1}},
  {selector: "edge[type = 'CO_OCCURS']", style: {"line-style": "dashed", "target-arrow-shape": "none", label: ""}},
  {selector: "edge.lite", style: {"curve-style": "haystack", label: "", "target-arrow-shape": "none"}},
  {selector: "node.lite", style: {"min-zoomed-font-size": 9}},
  {selector: ".hidden", style: {display: "none"}},
];

export class GraphView {
  /** container: an element; onNode(id, data) when a node is tapped. */
  constructor(container, {onNode, onNodeDbl} = {}) {
    this.el = container;
    this.el.classList.add("graph");
    this.cy = window.cytoscape({container, style: STYLE, minZoom: 0.05, maxZoom: 4, hideEdgesOnViewport: true,
                                textureOnViewport: true,
                                elements: []});
    if (onNode) this.cy.on("tap", "node", (e) => onNode(e.target.id(), e.target.data()));
    if (onNodeDbl) this.cy.on("dbltap", "node", (e) => onNodeDbl(e.target.id(), e.target.data()));
    this.filters = {types: null, classes: null};
    this.resizer = new ResizeObserver(() => { this.cy.resize(); this.cy.fit(undefined, 20); });
    this.resizer.observe(container);
    this.count();
  }

  /** Add nodes [{id, name, label}] and edges [{source, target, type}] not drawn yet; returns how many nodes were new. */
  add(nodes, edges, {focus} = {}) {
    const cy = this.cy;
    const fresh = [];
    for (const n of nodes) {
      if (!n || n.id === undefined || n.id === null || cy.getElementById(String(n.id)).nonempty()) continue;
      fresh.push({group: "nodes", data: {id: String(n.id), name: n.name ?? String(n.id), label: n.label || "",
                                         colour: classColour(n.label)}});
    }
    const lite = cy.nodes().length + fresh.length > LITE_OVER ? "lite" : "";
    for (const el of fresh) el.classes = lite;
    cy.add(fresh);
    const es = [];
    for (const e of edges) {
      const s = String(e.source), t = String(e.target);
      const id = e.id !== undefined && e.id !== null ? `e:${e.id}` : `e:${s}|${e.type}|${t}`;
      if (cy.getElementById(id).nonempty() || cy.getElementById(s).empty() || cy.getElementById(t).empty()) continue;
      es.push({group: "edges", data: {id, source: s, target: t, type: e.type || ""}, classes: lite});
    }
    cy.add(es);
    if (focus !== undefined) cy.getElementById(String(focus)).addClass("focus");
    this.apply();
    this.layout();
    return fresh.length;
  }

  set(nodes, edges, opts) {
    this.cy.elements().remove();
    return this.add(nodes, edges, opts);
  }

  layout() {
    // cose reads well for a neighbourhood; past a few hundred nodes it costs seconds, so big graphs are placed by
    // degree (concentric) and drawn lighter: straight "haystack" edges, no edge labels, node labels when zoomed in
    const n = this.cy.nodes().length;
    const big = n > LITE_OVER;
    const wrong = this.cy.elements(big ? ":not(.lite)" : ".lite");
    if (wrong.nonempty()) this.cy.batch(() => wrong.toggleClass("lite", big));
    const opts = big ? {name: "concentric", animate: false, padding: 10, minNodeSpacing: 4,
                        concentric: (node) => node.degree(), levelWidth: () => 2}
                     : {name: "cose", animate: false, nodeRepulsion: 9000, idealEdgeLength: 70, padding: 20,
                        numIter: n <= 80 ? 1000 : 400};
    this.cy.layout(opts).run();
    this.cy.fit(undefined, 20);
  }

  /** Show only edges of these relation types and nodes of these classes (null = all); a node stays when focused. */
  filter({types, classes}) {
    if (types !== undefined) this.filters.types = types;
    if (classes !== undefined) this.filters.classes = classes;
    this.apply();
  }

  apply() {
    const {types, classes} = this.filters;
    this.cy.batch(() => {
      this.cy.nodes().forEach((n) => n.toggleClass("hidden", !!classes && !classes.has(n.data("label")) && !n.hasClass("focus")));
      this.cy.edges().forEach((e) => e.toggleClass("hidden", !!types && !types.has(e.data("type"))));
    });
    this.count();
  }

  classes() { return [...new Set(this.cy.nodes().map((n) => n.data("label")))].sort(); }
  types() { return [...new Set(this.cy.edges().map((e) => e.data("type")))].sort(); }

  count() {
    // from the filter classes, not cytoscape's :visible (its style catches up after the batch, not at once)
    const shown = this.cy.nodes().filter((n) => !n.hasClass("hidden"));
    const edges = this.cy.edges().filter((e) => !e.hasClass("hidden") && !e.source().hasClass("hidden") &&
                                                !e.target().hasClass("hidden"));
    this.el.dataset.nodes = String(shown.length);
    this.el.dataset.edges = String(edges.length);
    this.el.dataset.total = String(this.cy.nodes().length);
  }

  destroy() { this.resizer.disconnect(); this.cy.destroy(); }
}

/** A legend of classes with their colours; onToggle(set of shown classes). */
export function legend(h, classes, onToggle) {
  const shown = new Set(classes);
  return h("div", {class: "legend"}, classes.map((c) => h("label", {class: "chip"},
    h("input", {type: "checkbox", checked: true, onchange: (e) => {
      e.target.checked ? shown.add(c) : shown.delete(c);
      onToggle(new Set(shown));
    }}),
    swatch(h, classColour(c)), c || "(none)")));
}

export function swatch(h, colour) {
  const el = h("span", {class: "swatch"});
  el.style.background = colour;  // CSSOM, which the page's style-src 'self' allows (a style attribute it would not)
  return el;
}
