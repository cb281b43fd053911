// The workflow editor: name, description, steps (tool, dependencies, inputs from the tool's schema), a diagram
// that follows the edits, the server's validation errors at the step and field they name, and the version.

import { del, get, patch, post, tools as loadTools } from "../api.js";
import { clearDraft, loadDraft, saveDraft } from "../drafts.js";
import { clear, errorState, field, formMessage, h, loading, pageHeading, setFieldError, uniqueId } from "../dom.js";
import { dagDiagram } from "../dag.js";
import { navigate } from "../router.js";
import { availability, toolList } from "./tools.js";

export async function show({ main, params: [workflowId], signal }) {
  main.append(loading("Loading the workflow…"));
  let workflow = null;
  let tools = [];
  try {
    [workflow, tools] = await Promise.all([workflowId ? get(`/workflows/${workflowId}`, { signal }) : null, loadTools()]);
  } catch (error) {
    if (error.name === "AbortError") return;
    clear(main, pageHeading("Workflow"), errorState(error, () => navigate(location.pathname, { replace: true })));
    return;
  }
  new Editor({ main, workflow, tools, signal }).render();
}

function toState(workflow) {
  return {
    name: workflow?.name ?? "",
    description: workflow?.description ?? "",
    timeoutSeconds: workflow?.timeoutSeconds != null ? String(workflow.timeoutSeconds) : "",
    reply: workflow?.reply ?? "",
    steps: (workflow?.steps ?? []).map((step) => ({
      id: step.id,
      name: step.name ?? "",
      toolId: step.toolId,
      inputs: step.inputs ?? {},
      dependsOn: step.dependsOn ?? [],
      timeoutSeconds: step.timeoutSeconds != null ? String(step.timeoutSeconds) : "",
      retries: step.retries != null ? String(step.retries) : "",
    })),
  };
}

/** The server names fields `steps[0].inputs.template` or `steps.0.toolId`; the editor uses the first form. */
export function normaliseField(path) {
  return path.replace(/\.(\d+)(?=\.|\[|$)/g, "[$1]");
}

function parentField(path) {
  const cut = Math.max(path.lastIndexOf("."), path.lastIndexOf("["));
  return cut > 0 ? path.slice(0, cut) : null;
}

class Editor {
  constructor({ main, workflow, tools, signal }) {
    Object.assign(this, { main, workflow, tools, signal });
    this.toolsById = new Map(tools.map((tool) => [tool.id, tool]));
    this.draftKey = `workflow:${workflow?.id ?? "new"}`;
    const draft = loadDraft(this.draftKey);
    this.restored = draft != null;
    this.state = draft ?? toState(workflow);
    if (!workflow && !draft) this.state.steps.push(this.blankStep());
  }

  blankStep() {
    const taken = new Set(this.state.steps.map((s) => s.id));
    let n = this.state.steps.length + 1;
    while (taken.has(`step${n}`)) n += 1;
    const toolId = this.toolsById.has("template") ? "template" : this.tools[0]?.id ?? "";
    return { id: `step${n}`, name: "", toolId, inputs: {}, dependsOn: [], timeoutSeconds: "", retries: "" };
  }

  changed({ structure = false } = {}) {
    saveDraft(this.draftKey, this.state);
    if (structure) this.renderSteps();
    clearTimeout(this.diagramTimer);
    this.diagramTimer = setTimeout(() => clear(this.diagramSlot, dagDiagram(this.state.steps)), 80);
  }

  render() {
    const title = this.workflow ? `Workflow: ${this.workflow.name}` : "New workflow";
    this.summary = h("div", { class: "error-summary", tabindex: "-1", hidden: true });
    this.notices = h("div", { role: "status" });
    if (this.restored) {
      this.notices.append(h("p", { class: "form-message form-notice" }, "Restored changes you had not saved. ",
        h("button", { type: "button", class: "link", onClick: () => this.discard() }, "Discard them")));
    }
    this.stepsSlot = h("ol", { class: "step-editors" });
    this.diagramSlot = h("div", null, dagDiagram(this.state.steps));
    const textInput = (key, attrs, tag = "input") => {
      const control = h(tag, { name: key, value: this.state[key], ...attrs });
      control.dataset.field = key;
      control.addEventListener("input", () => {
        this.state[key] = control.value;
        this.changed();
      });
      return control;
    };
    this.form = h(
      "form",
      { class: "workflow-form", novalidate: true, "aria-label": title },
      this.summary,
      field("Name", textInput("name", { maxlength: 255, required: true })),
      field("Description", textInput("description", { maxlength: 1000, rows: 2 }, "textarea")),
      h("div", { class: "two" },
        field("Run timeout (seconds)", textInput("timeoutSeconds", { inputmode: "numeric" }), { hint: "Empty: no limit for the whole run." }),
        field("Reply", textInput("reply", { rows: 2, class: "code" }, "textarea"), { hint: "A template for the assistant's message; empty: the last step's text." })),
      h("h2", null, "Steps"),
      this.stepsSlot,
      h("button", { type: "button", class: "secondary", onClick: () => this.addStep() }, "Add step"),
      h("div", { class: "form-actions" },
        h("button", { type: "submit" }, this.workflow ? "Save changes" : "Create workflow"),
        this.workflow && h("button", { type: "button", class: "danger", onClick: () => this.remove() }, "Delete workflow")),
    );
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.save();
    });
    clear(
      this.main,
      h("div", { class: "page-head" }, h("p", { class: "crumbs" }, h("a", { href: "/workflows" }, "Workflows"), " /"), pageHeading(title)),
      this.notices,
      h("div", { class: "editor-grid" },
        this.form,
        h("aside", { class: "editor-side", "aria-label": "About this workflow" },
          h("section", { "aria-labelledby": "diagram-title" }, h("h2", { id: "diagram-title" }, "Diagram"), this.diagramSlot),
          h("section", { "aria-labelledby": "versions-title" }, h("h2", { id: "versions-title" }, "Versions"), this.versionInfo()),
          h("section", { "aria-labelledby": "tools-title" }, h("h2", { id: "tools-title" }, "Tools"), toolList(this.tools)))),
    );
    this.renderSteps();
  }

  versionInfo() {
    if (!this.workflow) return h("p", { class: "muted" }, "Version 1 is made when you create the workflow.");
    return h("div", null,
      h("p", null, h("strong", null, `Version ${this.workflow.version}`), " — the current one."),
      h("p", { class: "muted" }, "Changing the steps, the run timeout or the reply makes a new version; runs keep the version they started with. The API offers no list of earlier versions, so only the current one is shown."));
  }

  renderSteps() {
    clear(this.stepsSlot, this.state.steps.map((step, index) => this.stepEditor(step, index)));
  }

  stepEditor(step, index) {
    const path = `steps[${index}]`;
    const on = (control, key, { structure = false, read = (c) => c.value } = {}) => {
      control.dataset.field = `${path}.${key}`;
      control.addEventListener(control.tagName === "SELECT" ? "change" : "input", () => {
        step[key] = read(control);
        this.changed({ structure });
      });
      return control;
    };
    const tool = this.toolsById.get(step.toolId);
    const toolSelect = on(
      h("select", { name: `${path}.toolId` },
        !tool && h("option", { value: step.toolId, selected: true }, step.toolId ? `${step.toolId} (unknown)` : "Choose a tool…"),
        this.tools.map((t) => h("option", { value: t.id, selected: t.id === step.toolId }, `${t.name || t.id}${t.available === false ? " (unavailable)" : ""}`))),
      "toolId",
      { structure: true },
    );
    const others = this.state.steps.filter((s) => s !== step && s.id);
    const depsError = h("p", { class: "field-error", id: uniqueId("deps-error"), hidden: true });
    const deps = h("fieldset", { class: "deps", "data-field": `${path}.dependsOn`, "aria-describedby": depsError.id },
      h("legend", null, "Runs after"),
      others.length ? others.map((other) => {
        const box = h("input", { type: "checkbox", checked: step.dependsOn.includes(other.id), id: uniqueId("dep") });
        box.addEventListener("change", () => {
          step.dependsOn = box.checked ? [...new Set([...step.dependsOn, other.id])] : step.dependsOn.filter((d) => d !== other.id);
          this.changed();
        });
        return h("label", { class: "check", for: box.id }, box, " ", other.id);
      }) : h("p", { class: "muted" }, "No other steps."),
      depsError);
    deps.id = depsError.id.replace("-error", "");
    const stepError = h("p", { class: "field-error", id: `${uniqueId("step")}-error`, hidden: true });
    const fieldsetEl = h(
      "li",
      { class: "step-editor", "data-field": path, id: stepError.id.replace("-error", "") },
      h("fieldset", null,
        h("legend", null, `Step ${index + 1}`, step.id ? `: ${step.id}` : ""),
        stepError,
        h("div", { class: "two" },
          field("Step id", on(h("input", { name: `${path}.id`, value: step.id, maxlength: 64, required: true, spellcheck: "false" }), "id", { structure: true }), { hint: "Letters, digits, - and _." }),
          field("Name (optional)", on(h("input", { name: `${path}.name`, value: step.name, maxlength: 255 }), "name"))),
        field("Tool", toolSelect, { hint: tool ? null : "This tool is not on this server." }),
        tool && h("p", { class: "hint" }, availability(tool)),
        deps,
        this.inputsEditor(step, path, tool),
        h("div", { class: "two" },
          field("Timeout (seconds, optional)", on(h("input", { name: `${path}.timeoutSeconds`, value: step.timeoutSeconds, inputmode: "decimal" }), "timeoutSeconds")),
          field("Retries (optional)", on(h("input", { name: `${path}.retries`, value: step.retries, inputmode: "numeric" }), "retries"))),
        h("div", { class: "step-actions" },
          h("button", { type: "button", class: "secondary small", disabled: index === 0, onClick: () => this.move(index, -1), "aria-label": `Move step ${step.id || index + 1} up` }, "Move up"),
          h("button", { type: "button", class: "secondary small", disabled: index === this.state.steps.length - 1, onClick: () => this.move(index, 1), "aria-label": `Move step ${step.id || index + 1} down` }, "Move down"),
          h("button", { type: "button", class: "danger small", onClick: () => this.removeStep(index), "aria-label": `Remove step ${step.id || index + 1}` }, "Remove"))),
    );
    return fieldsetEl;
  }

  /** One control per input the tool's schema names; text inputs raw, others as JSON (or a template string). */
  inputsEditor(step, path, tool) {
    const properties = tool?.inputSchema?.properties;
    if (!properties || !Object.keys(properties).length) {
      const area = h("textarea", { name: `${path}.inputs`, rows: 3, class: "code", spellcheck: "false", value: JSON.stringify(step.inputs, null, 2) });
      area.dataset.field = `${path}.inputs`;
      area.addEventListener("input", () => {
        try {
          step.inputs = JSON.parse(area.value || "{}");
          setFieldError(area, null);
          this.changed();
        } catch (error) {
          setFieldError(area, `This is not JSON: ${error.message}`);
        }
      });
      return field("Inputs (a JSON object)", area);
    }
    const required = new Set(tool.inputSchema.required || []);
    return h("fieldset", { class: "inputs" }, h("legend", null, "Inputs"),
      Object.entries(properties).map(([name, schema]) => {
        const isText = schema.type === "string";
        const value = step.inputs[name];
        const shown = value === undefined ? "" : isText && typeof value === "string" ? value : JSON.stringify(value);
        const control = h(isText ? "textarea" : "input", { name: `${path}.inputs.${name}`, value: shown, rows: isText ? 2 : undefined, class: "code", spellcheck: "false" });
        control.dataset.field = `${path}.inputs.${name}`;
        control.addEventListener("input", () => {
          if (control.value === "") delete step.inputs[name];
          else if (isText) step.inputs[name] = control.value;
          else {
            try {
              step.inputs[name] = JSON.parse(control.value);
            } catch {
              step.inputs[name] = control.value; // a template such as {{ input.n }}
            }
          }
          this.changed();
        });
        const hint = [schema.description, !isText && "JSON, or a {{ template }}."].filter(Boolean).join(" ");
        return field(`${name}${required.has(name) ? "" : " (optional)"}`, control, { hint });
      }));
  }

  addStep() {
    this.state.steps.push(this.blankStep());
    this.changed({ structure: true });
    this.stepsSlot.lastElementChild?.querySelector("input")?.focus();
  }

  move(index, by) {
    const steps = this.state.steps;
    [steps[index], steps[index + by]] = [steps[index + by], steps[index]];
    this.changed({ structure: true });
    this.stepsSlot.children[index + by]?.querySelector(`button:not([disabled])`)?.focus();
  }

  removeStep(index) {
    const [gone] = this.state.steps.splice(index, 1);
    for (const step of this.state.steps) step.dependsOn = step.dependsOn.filter((d) => d !== gone.id);
    this.changed({ structure: true });
  }

  body() {
    const number = (text) => (text.trim() === "" ? null : Number(text));
    const s = this.state;
    const body = {
      name: s.name,
      description: s.description || null,
      steps: s.steps.map((step) => ({
        id: step.id,
        ...(step.name && { name: step.name }),
        toolId: step.toolId,
        inputs: step.inputs,
        dependsOn: step.dependsOn,
        ...(number(step.timeoutSeconds) != null && { timeoutSeconds: number(step.timeoutSeconds) }),
        ...(number(step.retries) != null && { retries: number(step.retries) }),
      })),
    };
    // Older servers know neither field: send them only when set or already part of the workflow.
    if (s.timeoutSeconds.trim() || "timeoutSeconds" in (this.workflow ?? {})) body.timeoutSeconds = number(s.timeoutSeconds);
    if (s.reply || "reply" in (this.workflow ?? {})) body.reply = s.reply || null;
    return body;
  }

  clearErrors() {
    for (const control of this.form.querySelectorAll("[aria-invalid=true]")) setFieldError(control, null);
    for (const slot of this.form.querySelectorAll(".step-editor > fieldset > .field-error, .deps > .field-error")) {
      slot.hidden = true;
      slot.textContent = "";
    }
    this.summary.hidden = true;
    clear(this.summary);
  }

  async save() {
    this.clearErrors();
    clear(this.notices);
    const button = this.form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const saved = this.workflow
        ? await patch(`/workflows/${this.workflow.id}`, this.body(), { signal: this.signal })
        : await post("/workflows", this.body(), { signal: this.signal });
      clearDraft(this.draftKey);
      if (!this.workflow) {
        navigate(`/workflows/${saved.id}`, { replace: true });
        return;
      }
      this.workflow = saved;
      this.state = toState(saved);
      this.restored = false;
      this.render();
      this.notices.append(formMessage(`Saved. This is version ${saved.version}.`, "notice"));
    } catch (error) {
      if (error.name !== "AbortError") this.showErrors(error);
    } finally {
      button.disabled = false;
    }
  }

  /** Each problem at its field (or the closest enclosing one), and all of them in a summary linking there. */
  showErrors(error) {
    const items = [];
    let first = null;
    for (const detail of error.details) {
      const path = normaliseField(detail.field);
      let target = null;
      for (let at = path; at && !target; at = parentField(at)) target = this.form.querySelector(`[data-field="${CSS.escape(at)}"]`);
      if (target) {
        if (target.matches("input, select, textarea")) setFieldError(target, detail.message);
        else {
          const slot = target.querySelector(":scope > .field-error, :scope > fieldset > .field-error");
          if (slot) {
            slot.textContent = `${detail.field}: ${detail.message}`;
            slot.hidden = false;
          }
        }
        first ??= target;
      }
      items.push(h("li", null, target?.id ? h("a", { href: `#${target.id}`, onClick: (event) => {
        event.preventDefault();
        (target.matches("input, select, textarea") ? target : target.querySelector("input, select, textarea"))?.focus();
      } }, detail.field) : h("code", null, detail.field), `: ${detail.message}`));
    }
    this.summary.hidden = false;
    clear(this.summary, h("p", { role: "alert" }, h("strong", null, error.message)), items.length && h("ul", null, items));
    (first && first.matches("input, select, textarea") ? first : this.summary).focus();
  }

  discard() {
    clearDraft(this.draftKey);
    this.state = toState(this.workflow);
    if (!this.workflow) this.state.steps.push(this.blankStep());
    this.restored = false;
    this.render();
  }

  async remove() {
    if (!window.confirm(`Delete the workflow “${this.workflow.name}”? Its past runs stay listed.`)) return;
    try {
      await del(`/workflows/${this.workflow.id}`, { signal: this.signal });
      clearDraft(this.draftKey);
      navigate("/workflows");
    } catch (error) {
      if (error.name !== "AbortError") this.notices.append(formMessage(error.message));
    }
  }
}
