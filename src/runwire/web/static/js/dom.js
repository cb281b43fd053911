// DOM helpers shared by every screen: element building, the loading/empty/error states, status labels, times.

const SVG_NS = "http://www.w3.org/2000/svg";

/** h("button", {class: "x", onClick: fn}, "text", child, [more]) — properties `value`/`checked` are set as such. */
export function h(tag, props, ...children) {
  const svg = tag.startsWith("svg:");
  const el = svg ? document.createElementNS(SVG_NS, tag.slice(4)) : document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value == null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2).toLowerCase(), value);
    else if (key === "value" || key === "checked" || key === "selected") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child == null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function loading(what = "Loading…") {
  return h("p", { class: "state state-loading", role: "status" }, what);
}

export function empty(text, ...actions) {
  return h("div", { class: "state state-empty" }, h("p", null, text), actions);
}

export function errorState(error, retry) {
  return h(
    "div",
    { class: "state state-error", role: "alert" },
    h("p", null, error?.message || String(error)),
    retry && h("button", { type: "button", onClick: retry }, "Try again"),
  );
}

export const STATUSES = ["pending", "running", "completed", "failed", "cancelled"];
const STATUS_MARKS = { pending: "○", running: "◔", completed: "✓", failed: "✕", cancelled: "⊘" };
export const FINAL = new Set(["completed", "failed", "cancelled"]);

export function statusLabel(status) {
  return status ? status[0].toUpperCase() + status.slice(1) : "Unknown";
}

/** A status as colour, mark and word: never colour alone. */
export function statusBadge(status, extra = "") {
  return h(
    "span",
    { class: `status status-${status}`, "data-status": status },
    h("span", { class: "status-mark", "aria-hidden": "true" }, STATUS_MARKS[status] || "?"),
    statusLabel(status) + extra,
  );
}

export function shortId(id) {
  return id ? id.slice(0, 8) : "";
}

export function formatTime(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  const sameDay = date.toDateString() === new Date().toDateString();
  return sameDay ? date.toLocaleTimeString() : date.toLocaleString();
}

export function formatDuration(startIso, endIso) {
  if (!startIso) return "—";
  const ms = (endIso ? Date.parse(endIso) : Date.now()) - Date.parse(startIso);
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  return `${minutes} min ${Math.round((ms % 60_000) / 1000)} s`;
}

export function timeElement(iso) {
  return h("time", { datetime: iso || undefined, title: iso || undefined }, formatTime(iso));
}

/** A JSON value as a tree of <details>: objects and arrays fold, scalars show as JSON. */
export function jsonTree(value, label = null, open = true) {
  if (value === null || typeof value !== "object") {
    return h("div", { class: "json-leaf" }, label != null && h("span", { class: "json-key" }, `${label}: `),
      h("code", { class: `json-${value === null ? "null" : typeof value}` }, JSON.stringify(value)));
  }
  const entries = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
  const summary = Array.isArray(value) ? `[${entries.length}]` : `{${entries.length}}`;
  return h(
    "details",
    { class: "json-node", open },
    h("summary", null, label != null && h("span", { class: "json-key" }, `${label}: `), summary),
    entries.map(([k, v]) => jsonTree(v, k, entries.length < 20)),
  );
}

let idCounter = 0;
export function uniqueId(prefix) {
  idCounter += 1;
  return `${prefix}-${idCounter}`;
}

/** A labelled form field: label, control, hint and an error slot the control is described by. */
export function field(labelText, control, { hint, name } = {}) {
  const id = control.id || uniqueId("field");
  control.id = id;
  const hintEl = hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null;
  const errorEl = h("p", { class: "field-error", id: `${id}-error`, hidden: true });
  control.setAttribute("aria-describedby", [hintEl && hintEl.id, errorEl.id].filter(Boolean).join(" "));
  if (name) control.dataset.field = name;
  return h("div", { class: "field" }, h("label", { for: id }, labelText), control, hintEl, errorEl);
}

/** Show `message` under the control of the field (or clear it with null). */
export function setFieldError(control, message) {
  const errorEl = document.getElementById(`${control.id}-error`);
  if (message) control.setAttribute("aria-invalid", "true");
  else control.removeAttribute("aria-invalid");
  if (errorEl) {
    errorEl.textContent = message || "";
    errorEl.hidden = !message;
  }
}

export function setTitle(text) {
  document.title = text ? `${text} · Runwire` : "Runwire";
}

/** The screen's <h1> (focusable, so that a new screen can take focus) and the document's title. */
export function pageHeading(text, ...extra) {
  setTitle(text);
  return h("h1", { tabindex: "-1" }, text, extra);
}

/** A form-level message: an error (announced) or a notice. */
export function formMessage(text, kind = "error") {
  return h("p", { class: `form-message form-${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}
