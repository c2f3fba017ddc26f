// Ask: POST /v1/query with stream=true; the answer text as it streams, numbered citations that open the cited
// span of their document, and the graph evidence drawn as a small graph.
import {session, stream} from "../api.js";
import {clear, errorBox, field, h} from "../dom.js";
import {showDocument} from "../docview.js";
import {GraphView} from "../graph.js";

export function mount(view) {
  const question = h("input", {id: "question", type: "text", placeholder: "Ask a question about your documents…",
                               required: true, maxlength: 2000, value: sessionStorage.getItem("kgf.lastQuestion") || ""});
  const mode = h("select", {id: "mode"}, ["hybrid", "vector", "graph"].map((m) => h("option", {value: m}, m)));
  const topK = h("input", {id: "top_k", type: "number", min: 1, max: 100, value: 5, class: "narrow"});
  const button = h("button", {type: "submit", class: "primary", id: "ask-button"}, "Ask");
  const status = h("span", {class: "muted small", id: "ask-status"});
  const answer = h("div", {class: "answer", id: "answer"});
  const citations = h("ol", {class: "citations", id: "citations"});
  const chunks = h("details", {class: "chunks", hidden: true});
  const graphBox = h("div", {class: "graph small-graph", id: "evidence-graph"});
  const docPanel = h("aside", {class: "card docpanel", id: "doc-panel", hidden: true});
  let graph = null;
  let ctrl = null;

  const form = h("form", {class: "askbar", id: "ask-form"}, question, field("mode", mode), field("top k", topK), button);
  view.append(
    h("h1", {}, "Ask"),
    form, status,
    h("div", {class: "ask-layout"},
      h("div", {class: "ask-main", id: "ask-results", hidden: true},
        h("div", {class: "card"}, answer, citations),
        h("div", {class: "card"}, h("h3", {}, "Graph evidence"), graphBox),
        chunks),
      docPanel));

  function cite(c, i) {
    return h("button", {type: "button", class: "cite", dataset: {cite: i}, title: `${c.title}: ${c.text}`,
                        onclick: () => openCitation(c)}, `[${i + 1}]`);
  }

  async function openCitation(c) {
    try {
      await showDocument(docPanel, c.doc_id, {start: c.start, end: c.end}, {onClose: () => { docPanel.hidden = true; }});
    } catch (e) {
      clear(docPanel, errorBox(e));
    }
  }

  function showAnswer(res) {
    // the answer text with its [n] markers made into buttons that open citation n
    const parts = String(res.answer || "").split(/(\[\d+\])/);
    clear(answer, parts.map((p) => {
      const m = /^\[(\d+)\]$/.exec(p);
      const c = m && res.citations[Number(m[1]) - 1];
      return c ? cite(c, Number(m[1]) - 1) : p;
    }));
    if (res.abstained) answer.append(h("div", {class: "notice"}, "The knowledge base does not hold the answer."));
    if (res.note) answer.append(h("div", {class: "muted small"}, res.note));
    clear(citations, res.citations.map((c, i) => h("li", {},
      cite(c, i), " ", h("strong", {}, c.title), " ", h("span", {class: "muted"}, `[${c.start}, ${c.end})`),
      h("div", {class: "quote"}, c.text))));
    drawEvidence(res);
  }

  function drawEvidence(res) {
    const nodes = new Map(), edges = [];
    const labels = new Map((res.seeds || []).map((s) => [s.name, s.label]));
    for (const c of res.chunks || []) for (const e of c.entities || []) labels.set(e.name, e.label);
    for (const ev of res.evidence || []) {
      for (const [a, rel, b] of ev.hops) {
        for (const n of [a, b]) nodes.set(n, {id: n, name: n, label: labels.get(n) || ""});
        edges.push({source: a, target: b, type: rel});
      }
    }
    for (const s of res.seeds || []) nodes.set(s.name, {id: s.name, name: s.name, label: s.label});
    if (!graph) graph = new GraphView(graphBox);
    graph.set([...nodes.values()], edges);
  }

  function showChunks(list) {
    chunks.hidden = !list.length;
    clear(chunks, h("summary", {}, `${list.length} retrieved chunks`),
      list.map((c) => h("div", {class: "chunk"}, h("strong", {}, c.title), ` score ${c.score.toFixed(3)}`,
                                                  h("div", {class: "quote"}, c.text))));
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (ctrl) ctrl.abort();
    ctrl = new AbortController();
    sessionStorage.setItem("kgf.lastQuestion", question.value);
    clear(answer);
    clear(citations);
    view.querySelector("#ask-results").hidden = false;
    answer.classList.add("streaming");
    view.dataset.state = "asking";
    status.textContent = "retrieving…";
    button.disabled = true;
    const body = {question: question.value, mode: mode.value, top_k: Number(topK.value) || 5, stream: true};
    try {
      await stream("/v1/query", body, (event, data) => {
        if (event === "retrieval") {
          status.textContent = `retrieved ${data.chunks.length} chunks; answering…`;
          showChunks(data.chunks);
        } else if (event === "token" || event === "delta") {
          answer.append(data.text ?? "");
        } else if (event === "rejected") {
          clear(answer, h("div", {class: "notice"}, data.message));
        } else if (event === "answer") {
          showAnswer(data);
          const ms = Object.values(data.timings || {}).reduce((a, b) => a + b, 0);
          status.textContent = `${data.kind} answer · ${data.citations.length} citations` + (ms ? ` · ${Math.round(ms)} ms` : "");
        } else if (event === "error") {
          answer.append(errorBox(`${data.type || "error"}: ${data.message || JSON.stringify(data)}`));
        }
      }, ctrl.signal);
      view.dataset.state = "answered";
    } catch (err) {
      if (err.name !== "AbortError") { answer.append(errorBox(err)); view.dataset.state = "error"; }
    } finally {
      answer.classList.remove("streaming");
      button.disabled = false;
    }
  });
  question.focus();
  return () => { if (ctrl) ctrl.abort(); if (graph) graph.destroy(); };
}
