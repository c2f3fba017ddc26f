// A document rebuilt from its chunks (GET /v1/documents/{id}) with a span [start, end) highlighted.
// Offsets are the server's: Python string indexes, i.e. code points, so the text is handled as code points.
import {getJSON} from "./api.js";
import {clear, h} from "./dom.js";

/** The document's text as an array of code points, from chunks carrying start/end document offsets. */
export function documentText(chunks) {
  const out = [];
  for (const c of [...chunks].sort((a, b) => (a.start ?? 0) - (b.start ?? 0))) {
    const cps = Array.from(c.text || "");
    const start = Number.isInteger(c.start) ? c.start : out.length;
    while (out.length < start) out.push(out.length === start - 1 ? "\n" : " ");  // a gap between chunks
    for (let i = out.length - start; i < cps.length; i++) out.push(cps[i]);
  }
  return out;
}

/** Render the document into `panel`, the span [start, end) in a <mark id="cited">, scrolled into view. */
export async function showDocument(panel, docId, span, {onClose} = {}) {
  clear(panel, h("div", {class: "muted"}, "Loading document…"));
  panel.hidden = false;
  const doc = await getJSON(`/v1/documents/${encodeURIComponent(docId)}`);
  const cps = documentText(doc.chunks || []);
  const body = h("pre", {class: "doctext", id: "doc-text"});
  if (span && Number.isInteger(span.start) && Number.isInteger(span.end)) {
    const mark = h("mark", {id: "cited", class: "cited", dataset: {start: span.start, end: span.end}},
                   cps.slice(span.start, span.end).join(""));
    body.append(cps.slice(0, span.start).join(""), mark, cps.slice(span.end).join(""));
  } else {
    body.append(cps.join(""));
  }
  clear(panel,
    h("div", {class: "panel-head"},
      h("h2", {}, doc.title || doc.id),
      onClose ? h("button", {class: "link", type: "button", onclick: onClose}, "Close") : null),
    h("div", {class: "muted small"}, doc.source || "", doc.tags && doc.tags.length ? ` · tags: ${doc.tags.join(", ")}` : "",
      ` · ${(doc.chunks || []).length} chunks`),
    body);
  const mark = panel.querySelector("#cited");
  if (mark) mark.scrollIntoView({block: "center"});
  return doc;
}
