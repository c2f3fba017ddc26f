// A query editor (the vendored CodeMirror 5) with a run shortcut and a history kept in localStorage.
import {h} from "./dom.js";

const HISTORY_MAX = 50;

export function editor(parent, {mode, value, onRun}) {
  const cm = window.CodeMirror(parent, {value, mode, lineNumbers: true, matchBrackets: true, viewportMargin: Infinity,
    extraKeys: {"Ctrl-Enter": () => onRun(), "Cmd-Enter": () => onRun()}});
  return cm;
}

export class History {
  constructor(key) { this.key = key; }
  all() {
    try { return JSON.parse(localStorage.getItem(this.key) || "[]"); } catch (_) { return []; }
  }
  push(q) {
    const items = [q, ...this.all().filter((x) => x !== q)].slice(0, HISTORY_MAX);
    localStorage.setItem(this.key, JSON.stringify(items));
  }
  /** A <select> listing the history; choosing an entry calls onPick(text). */
  widget(onPick) {
    const sel = h("select", {class: "history", title: "history"});
    const fill = () => {
      sel.replaceChildren(h("option", {value: ""}, `History (${this.all().length})`),
        ...this.all().map((q, i) => h("option", {value: String(i)}, q.replace(/\s+/g, " ").slice(0, 90))));
    };
    sel.addEventListener("change", () => {
      const q = this.all()[Number(sel.value)];
      if (sel.value !== "" && q !== undefined) onPick(q);
      sel.value = "";
    });
    fill();
    sel.refresh = fill;
    return sel;
  }
}
