// The tools this server offers, and why one is not available.

import { tools as loadTools } from "../api.js";
import { clear, empty, errorState, h, loading, pageHeading } from "../dom.js";

/** A tool's availability in words (older servers say nothing: then it is taken as available). */
export function availability(tool) {
  if (tool.available === false) return h("span", { class: "availability unavailable" }, h("span", { "aria-hidden": "true" }, "✕ "), "Unavailable", tool.reason ? `: ${tool.reason}` : "");
  return h("span", { class: "availability available" }, h("span", { "aria-hidden": "true" }, "✓ "), "Available");
}

export function toolList(tools) {
  return h(
    "ul",
    { class: "tool-list" },
    tools.map((tool) =>
      h("li", { class: "tool", "data-tool": tool.id },
        h("p", null, h("strong", null, tool.name || tool.id), " ", h("code", null, tool.id), tool.source && h("span", { class: "muted" }, ` · ${tool.source}`)),
        availability(tool),
        tool.description && h("p", { class: "muted" }, tool.description),
        Object.keys(tool.inputSchema?.properties || {}).length > 0 &&
          h("p", { class: "tool-inputs" }, "Inputs: ", Object.entries(tool.inputSchema.properties).map(([name, schema], i) => [
            i ? ", " : "", h("code", null, name), (tool.inputSchema.required || []).includes(name) ? "" : "?", schema.type ? ` (${schema.type})` : "",
          ]))),
    ),
  );
}

export async function show({ main }) {
  const status = h("div", null, loading("Loading tools…"));
  main.append(pageHeading("Tools"), h("p", { class: "muted" }, "What a workflow's steps can use on this server."), status);
  async function load() {
    try {
      const tools = await loadTools();
      clear(status, tools.length ? toolList(tools) : empty("This server offers no tools."));
    } catch (error) {
      clear(status, errorState(error, load));
    }
  }
  await load();
}
