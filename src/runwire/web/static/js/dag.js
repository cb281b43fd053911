// A workflow's steps as a left-to-right diagram: each step in the column after its deepest dependency.
// Used by the workflow editor (as it is edited) and the run page (coloured by each step's status).

import { h, statusLabel } from "./dom.js";

const NODE_W = 150;
const NODE_H = 46;
const GAP_X = 56;
const GAP_Y = 18;
const PAD = 8;

/** steps: [{id, name?, toolId, dependsOn?}] → {nodes: Map(id → {step, column, row, x, y}), edges: [[from, to]]} */
export function layout(steps) {
  const byId = new Map(steps.map((step) => [step.id, step]));
  const depth = new Map();
  const visiting = new Set();
  const depthOf = (id) => {
    if (depth.has(id)) return depth.get(id);
    if (visiting.has(id)) return 0; // a cycle: the server refuses it, the diagram just stops climbing
    visiting.add(id);
    const deps = (byId.get(id)?.dependsOn || []).filter((dep) => byId.has(dep));
    const value = deps.length ? 1 + Math.max(...deps.map(depthOf)) : 0;
    visiting.delete(id);
    depth.set(id, value);
    return value;
  };
  const rows = [];
  const nodes = new Map();
  for (const step of steps) {
    if (nodes.has(step.id)) continue; // repeated ids: the editor shows the error; draw the first
    const column = depthOf(step.id);
    const row = rows[column] = (rows[column] ?? -1) + 1;
    nodes.set(step.id, { step, column, row, x: PAD + column * (NODE_W + GAP_X), y: PAD + row * (NODE_H + GAP_Y) });
  }
  const edges = [];
  for (const step of steps) {
    for (const dep of step.dependsOn || []) if (nodes.has(dep)) edges.push([dep, step.id]);
  }
  return { nodes, edges };
}

/** The diagram as an SVG; `statuses` (id → status) colours nodes and names each status in words. */
export function dagDiagram(steps, { statuses = null, label = "Workflow diagram" } = {}) {
  if (!steps.length) return h("p", { class: "state state-empty" }, "No steps yet.");
  const { nodes, edges } = layout(steps);
  const columns = Math.max(...[...nodes.values()].map((n) => n.column)) + 1;
  const rowsCount = Math.max(...[...nodes.values()].map((n) => n.row)) + 1;
  const width = PAD * 2 + columns * NODE_W + (columns - 1) * GAP_X;
  const height = PAD * 2 + rowsCount * NODE_H + (rowsCount - 1) * GAP_Y;
  const description = [...nodes.values()]
    .map(({ step }) => {
      const deps = (step.dependsOn || []).length ? ` after ${step.dependsOn.join(", ")}` : "";
      return `${step.id}${statuses ? ` (${statuses[step.id] || "pending"})` : ""}${deps}`;
    })
    .join("; ");
  const svg = h(
    "svg:svg",
    { class: "dag", viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": `${label}: ${description}` },
    h("svg:defs", null, h("svg:marker", { id: "dag-arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" },
      h("svg:path", { d: "M0,0 L10,5 L0,10 z", class: "dag-arrow" }))),
  );
  for (const [from, to] of edges) {
    const a = nodes.get(from);
    const b = nodes.get(to);
    const x1 = a.x + NODE_W;
    const y1 = a.y + NODE_H / 2;
    const x2 = b.x;
    const y2 = b.y + NODE_H / 2;
    const bend = Math.max(20, (x2 - x1) / 2);
    svg.append(h("svg:path", { class: "dag-edge", d: `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}`, "marker-end": "url(#dag-arrow)" }));
  }
  for (const { step, x, y } of nodes.values()) {
    const status = statuses ? statuses[step.id] || "pending" : null;
    svg.append(
      h(
        "svg:g",
        { class: `dag-node${status ? ` status-${status}` : ""}`, transform: `translate(${x},${y})`, "data-step": step.id },
        h("svg:rect", { width: NODE_W, height: NODE_H, rx: 7 }),
        h("svg:text", { x: 10, y: 19, class: "dag-title" }, clip(step.name || step.id, 18)),
        h("svg:text", { x: 10, y: 36, class: "dag-sub" }, status ? `${statusLabel(status)} · ${clip(step.toolId, 10)}` : clip(step.toolId || "no tool", 20)),
      ),
    );
  }
  // Focusable, so that a keyboard can scroll a diagram wider than the screen.
  return h("div", { class: "dag-scroll", tabindex: "0", role: "group", "aria-label": label }, svg);
}

function clip(text, size) {
  text = String(text ?? "");
  return text.length > size ? `${text.slice(0, size - 1)}…` : text;
}
