// Documents: the list (GET /v1/documents) with status, tags and counts; upload (POST /v1/documents, multipart) with
// the job's progress (GET /v1/jobs/{id}); delete with an in-page confirmation. Upload and delete need an ingester.
import {call, getJSON, session} from "../api.js";
import {clear, errorBox, h, table} from "../dom.js";
import {showDocument} from "../docview.js";

export function mount(view, ctx) {
  return ctx.name === "document" && ctx.arg ? documentPage(view, ctx.arg) : listPage(view);
}

async function documentPage(view, id) {
  const panel = h("div", {class: "card", id: "doc-panel"});
  view.append(h("p", {}, h("a", {href: "#/documents"}, "← all documents")), panel);
  const doc = await showDocument(panel, id);
  const ents = (doc.entities || []).map((e) => h("a", {href: `#/entity/${encodeURIComponent(e.id)}`, class: "chip"}, e.name));
  if (ents.length) view.append(h("div", {class: "card"}, h("h3", {}, `Entities (${ents.length})`), h("div", {class: "chips"}, ents)));
}

async function listPage(view) {
  const canIngest = session.can("ingest");
  const list = h("div", {id: "documents", class: "card"});
  const jobBox = h("div", {id: "job"});
  view.append(h("h1", {}, "Documents"));
  if (canIngest) view.append(uploadForm(jobBox, () => refresh()), jobBox);
  view.append(list);

  async function refresh() {
    const docs = await getJSON("/v1/documents");
    const rows = docs.map((d) => [
      h("a", {href: `#/document/${encodeURIComponent(d.id)}`}, d.title || d.id),
      h("span", {class: `status ${d.status}`}, d.status || ""),
      (d.tags || []).join(", "), d.chunk_count ?? "", d.entity_count ?? "",
      (d.ingested_at || "").replace("T", " ").slice(0, 19),
      canIngest ? deleteCell(d) : null].filter((c) => c !== null));
    const cols = ["title", "status", "tags", "chunks", "entities", "ingested"].concat(canIngest ? [""] : []);
    clear(list, h("div", {class: "muted small"}, `${docs.length} document${docs.length === 1 ? "" : "s"}`),
      docs.length ? table(cols, rows) : h("p", {class: "muted"}, "No documents yet."));
  }

  function deleteCell(d) {
    const cell = h("span", {class: "delete-cell"});
    const ask = () => clear(cell,
      h("span", {class: "warn small"}, "Delete for good? "),
      h("button", {type: "button", class: "danger small", dataset: {confirmDelete: d.id}, onclick: async () => {
        try {
          await call(`/v1/documents/${encodeURIComponent(d.id)}`, {method: "DELETE"});
          await refresh();
        } catch (err) {
          clear(cell, errorBox(err));
        }
      }}, "Yes, delete"), " ",
      h("button", {type: "button", class: "small", onclick: idle}, "Cancel"));
    const idle = () => clear(cell, h("button", {type: "button", class: "small delete", dataset: {delete: d.id}, onclick: ask}, "Delete"));
    idle();
    return cell;
  }

  await refresh();
}

function uploadForm(jobBox, onDone) {
  const files = h("input", {type: "file", id: "upload-files", multiple: true, required: true});
  const tags = h("input", {type: "text", id: "upload-tags", placeholder: "tags, comma separated", class: "wide"});
  const button = h("button", {type: "submit", class: "primary"}, "Upload");
  const form = h("form", {class: "card toolbar", id: "upload-form"}, h("strong", {}, "Upload"), files, tags, button);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const fd = new FormData();
    for (const f of files.files) fd.append("files", f, f.name);
    for (const t of tags.value.split(",").map((x) => x.trim()).filter(Boolean)) fd.append("tags", t);
    button.disabled = true;
    try {
      let job = await (await call("/v1/documents", {method: "POST", body: fd})).json();
      while (job.state === "queued" || job.state === "running") {
        clear(jobBox, jobLine(job));
        await new Promise((r) => setTimeout(r, 500));
        job = await getJSON(`/v1/jobs/${encodeURIComponent(job.id)}`);
      }
      clear(jobBox, jobLine(job));
      form.reset();
      await onDone();
    } catch (err) {
      clear(jobBox, errorBox(err));
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

function jobLine(job) {
  const p = job.progress || {};
  const done = p.documents_processed ?? p.processed ?? p.done;
  const total = p.files ?? p.total ?? job.files.length;
  return h("div", {class: `card job ${job.state}`, dataset: {state: job.state}},
    h("strong", {}, `job ${job.id}: ${job.state}`),
    done !== undefined ? h("progress", {max: total || 1, value: done}) : null,
    h("span", {class: "muted small"}, ` ${Object.entries(p).map(([k, v]) => `${k} ${v}`).join(" · ")}`),
    job.error ? errorBox(job.error) : null,
    (job.errors || []).map((er) => h("div", {class: "error small"}, Object.values(er).join(": "))));
}
