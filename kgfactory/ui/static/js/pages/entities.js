// Entities: type-ahead search (GET /v1/entities?q=), and an entity's page (GET /v1/entities/{id}) with its
// classes, aliases, relations with provenance, mentions, and its neighbourhood graph (expand, filter, colour by class).
import {getJSON, qs} from "../api.js";
import {clear, errorBox, field, h, table} from "../dom.js";
import {GraphView, classColour, legend, swatch} from "../graph.js";

export function mount(view, ctx) {
  return ctx.name === "entity" && ctx.arg ? entityPage(view, ctx) : searchPage(view, ctx);
}

function chip(label) {
  return h("span", {class: "chip"}, swatch(h, classColour(label)), label || "?");
}

function entityLink(e) {
  return h("a", {href: `#/entity/${encodeURIComponent(e.id)}`, class: "entity-link"}, e.name || e.id);
}

function searchBox(onPick, {autofocus = false} = {}) {
  const input = h("input", {type: "search", id: "entity-q", placeholder: "Search entities by name…", autocomplete: "off",
                            maxlength: 200, role: "combobox", "aria-controls": "entity-results"});
  const list = h("ul", {class: "typeahead", id: "entity-results", role: "listbox"});
  let timer = null, seq = 0;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const q = input.value.trim();
      const mine = ++seq;
      if (!q) return clear(list);
      try {
        const res = await getJSON(`/v1/entities?${qs({q, limit: 15})}`);
        if (mine !== seq) return;  // a newer keystroke answered first
        clear(list, res.items.length ? res.items.map((it) => h("li", {role: "option", dataset: {id: it.id}},
          h("a", {href: `#/entity/${encodeURIComponent(it.id)}`, onclick: () => onPick && onPick(it)},
            h("strong", {}, it.name), " ", chip(it.label),
            h("span", {class: "muted small"}, ` ${it.match} · ${it.mentions} mention${it.mentions === 1 ? "" : "s"}`),
            it.aliases && it.aliases.length ? h("div", {class: "muted small"}, `aka ${it.aliases.join(", ")}`) : null)))
          : h("li", {class: "muted"}, "no entity matches"));
      } catch (e) {
        if (mine === seq) clear(list, h("li", {}, errorBox(e)));
      }
    }, 150);
  });
  if (autofocus) setTimeout(() => input.focus());
  return h("div", {class: "search"}, input, list);
}

function searchPage(view) {
  view.append(h("h1", {}, "Entities"),
    h("p", {class: "muted"}, "Type a name: exact, prefix and fuzzy matches of this tenant's entities and their aliases."),
    searchBox(null, {autofocus: true}));
}

async function entityPage(view, {arg, go}) {
  const e = await getJSON(`/v1/entities/${encodeURIComponent(arg)}`);
  const classes = e.classes && e.classes.length ? e.classes : [e.label];
  const depth = h("select", {id: "graph-depth"}, [1, 2].map((d) => h("option", {value: d}, String(d))));
  const graphBox = h("div", {class: "graph big-graph", id: "entity-graph"});
  const filters = h("div", {class: "filters", id: "graph-filters"});
  const info = h("div", {class: "muted small", id: "graph-info"});
  const picked = h("div", {class: "picked", id: "graph-picked"});
  let graph = null;  // made once the container is on the page (cytoscape measures it)

  function pick(id, data) {
    clear(picked, h("strong", {}, data.name), " ", chip(data.label), " ",
      h("button", {type: "button", class: "small", onclick: () => expand(id)}, "Expand"), " ",
      h("a", {href: `#/entity/${encodeURIComponent(id)}`}, "Open"));
  }

  function drawFilters() {
    const types = graph.types();
    const shownTypes = new Set(types);
    clear(filters,
      h("div", {}, h("span", {class: "muted small"}, "relations "), types.map((t) => h("label", {class: "chip"},
        h("input", {type: "checkbox", checked: true, dataset: {type: t}, onchange: (ev) => {
          ev.target.checked ? shownTypes.add(t) : shownTypes.delete(t);
          graph.filter({types: new Set(shownTypes)});
          info.textContent = summary();
        }}), t))),
      h("div", {}, h("span", {class: "muted small"}, "classes "), legend(h, graph.classes(), (shown) => {
        graph.filter({classes: shown});
        info.textContent = summary();
      })));
  }

  let truncated = false;
  const summary = () => `${graphBox.dataset.nodes} nodes, ${graphBox.dataset.edges} edges on screen` +
                        (truncated ? " (truncated: raise the limit or filter)" : "");

  async function load() {
    const g = await getJSON(`/v1/entities/${encodeURIComponent(e.id)}/graph?${qs({depth: depth.value, limit: 2000})}`);
    truncated = g.truncated;
    graph.set(g.nodes, g.edges, {focus: e.id});
    graphBox.dataset.apiNodes = String(g.nodes.length);
    drawFilters();
    info.textContent = summary();
  }

  async function expand(id) {
    try {
      const g = await getJSON(`/v1/entities/${encodeURIComponent(id)}/graph?${qs({depth: 1, limit: 500})}`);
      truncated = truncated || g.truncated;
      const added = graph.add(g.nodes, g.edges);
      drawFilters();
      info.textContent = `${summary()} · expanded: ${added} new`;
    } catch (err) {
      info.replaceChildren(errorBox(err));
    }
  }

  depth.addEventListener("change", () => load().catch((err) => info.replaceChildren(errorBox(err))));

  const relations = (e.relations || []).map((r) => [
    r.type, r.direction === "in" ? "←" : "→", entityLink(r.other), chip(r.other.label),
    h("span", {}, (r.doc_ids || []).map((d, i) => [i ? ", " : "",
      h("a", {href: `#/document/${encodeURIComponent(d)}`, title: d}, d.length > 14 ? `${d.slice(0, 12)}…` : d)]))]);
  const mentions = (e.mentions || []).map((m) => h("li", {},
    m.doc_id ? h("a", {href: `#/document/${encodeURIComponent(m.doc_id)}`}, m.title || m.doc_id) : (m.title || ""),
    h("div", {class: "quote"}, m.text || "")));

  view.append(
    searchBox((it) => go(`#/entity/${encodeURIComponent(it.id)}`)),
    h("div", {class: "entity-head"},
      h("h1", {id: "entity-name"}, e.name || e.id), chip(e.label),
      h("div", {class: "muted small", id: "entity-classes"}, "class: ", classes.join(" → ")),
      e.aliases && e.aliases.length ? h("div", {class: "muted small"}, `aliases: ${e.aliases.join(", ")}`) : null),
    h("div", {class: "entity-layout"},
      h("div", {class: "card"},
        h("div", {class: "graph-controls"}, h("h3", {}, "Neighbourhood"), field("depth", depth), info),
        graphBox, filters, picked),
      h("div", {class: "entity-side"},
        h("div", {class: "card"}, h("h3", {}, `Relations (${relations.length})`),
          relations.length ? table(["type", "", "entity", "class", "documents"], relations) : h("p", {class: "muted"}, "none")),
        h("div", {class: "card"}, h("h3", {}, `Mentions (${mentions.length})`), h("ul", {class: "mentions"}, mentions)))));
  graph = new GraphView(graphBox, {onNode: pick, onNodeDbl: (id) => expand(id)});
  await load();
  return () => graph.destroy();
}
