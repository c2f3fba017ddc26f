// Sign-in: an API key (from `kgf keys create`), checked with GET /v1/whoami and kept in this tab's sessionStorage.
import {clear, errorBox, h} from "../dom.js";

export function mount(view, {signIn, go}) {
  const input = h("input", {type: "password", id: "apikey", name: "apikey", autocomplete: "off", required: true,
                            placeholder: "kgf_…", spellcheck: "false"});
  const msg = h("div");
  const form = h("form", {class: "card signin", id: "signin-form"},
    h("h1", {}, "Sign in"),
    h("p", {class: "muted"}, "Paste an API key (", h("code", {}, "kgf keys create --role reader"), "). It stays in this tab only."),
    h("label", {class: "field"}, h("span", {}, "API key"), input),
    h("button", {type: "submit", class: "primary"}, "Sign in"),
    msg);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clear(msg);
    try {
      await signIn(input.value.trim());
      go("#/ask");
    } catch (err) {
      msg.append(errorBox(err));
    }
  });
  view.append(form);
  input.focus();
}
