// One run: what failed (at the top), its steps as a diagram, a timeline, and each step's record, kept live by the
// run's stream until it ends.

import { get } from "../api.js";
import { clear, errorState, formatDuration, h, jsonTree, loading, pageHeading, shortId, statusBadge, timeElement } from "../dom.js";
import { dagDiagram } from "../dag.js";
import { openStream, streamStateText } from "../live.js";
import { navigate } from "../router.js";
import { applyRunEvent, cancelRun, decideStep, failureSummary, isActive, mergeRun, pipeline, timeline } from "../runs.js";

const REFRESH_DELAY_MS = 200;

export async function show({ main, params: [chatId, runId], signal }) {
  main.append(loading("Loading the run…"));
  let run;
  let workflow = null;
  try {
    run = await get(`/chats/${chatId}/workflow-runs/${runId}`, { signal });
    workflow = await get(`/workflows/${run.workflowId}`, { signal }).catch(() => null);
  } catch (error) {
    if (error.name === "AbortError") return;
    clear(main, pageHeading("Run"), errorState(error, () => navigate(location.pathname, { replace: true })));
    return;
  }
  const view = new RunView({ main, run, workflow, signal });
  view.render();
  if (isActive(run)) view.follow();
}

class RunView {
  constructor({ main, run, workflow, signal }) {
    Object.assign(this, { main, run, workflow, signal });
    this.deltas = new Map(); // stepId → text streamed so far
    this.liveState = h("p", { class: "live-state", role: "status", "data-state": "ended" }, "");
    this.timer = null;
  }

  follow() {
    openStream(`/api/chats/${this.run.chatId}/workflow-runs/${this.run.id}/stream`, {
      signal: this.signal,
      finalTypes: ["run_completed", "run_failed"],
      onState: (state) => {
        this.liveState.dataset.state = state;
        this.liveState.textContent = streamStateText(state);
        if (state === "ended" || state === "unavailable") this.refresh();
      },
      onEvent: (type, data) => {
        if (type === "step_output_delta") this.deltas.set(data.stepId, (this.deltas.get(data.stepId) || "") + data.text);
        if (applyRunEvent(this.run, type, data) || type === "step_output_delta") this.render();
        clearTimeout(this.timer);
        this.timer = setTimeout(() => this.refresh(), REFRESH_DELAY_MS);
      },
    });
    // Running bars grow with the clock.
    const tick = setInterval(() => isActive(this.run) ? this.renderTimeline() : clearInterval(tick), 1000);
    this.signal.addEventListener("abort", () => clearInterval(tick));
  }

  async refresh() {
    try {
      this.run = mergeRun(this.run, await get(`/chats/${this.run.chatId}/workflow-runs/${this.run.id}`, { signal: this.signal }));
      this.render();
    } catch (error) {
      if (error.name !== "AbortError") this.liveState.textContent = `Could not refresh: ${error.message}`;
    }
  }

  /** The diagram needs `dependsOn`, which only the workflow has: usable when it is still at the run's version. */
  diagram() {
    const statuses = Object.fromEntries(this.run.steps.map((s) => [s.id, s.status]));
    if (this.workflow && this.workflow.version === this.run.workflowVersion) {
      return dagDiagram(this.workflow.steps, { statuses, label: "Steps of this run" });
    }
    return h("div", null, h("p", { class: "hint" }, "The workflow has changed since this run (or is deleted), so its steps show as a pipeline in dependency order."), pipeline(this.run));
  }

  render() {
    const run = this.run;
    const open = new Set([...this.main.querySelectorAll("details[data-key]")].filter((d) => d.open).map((d) => d.dataset.key));
    const closed = new Set([...this.main.querySelectorAll("details[data-key]")].filter((d) => !d.open).map((d) => d.dataset.key));
    const failure = failureSummary(run);
    const name = this.workflow?.name || `workflow ${shortId(run.workflowId)}`;
    this.timelineSlot = h("div", null, timeline(run));
    const cancel = isActive(run) && h("button", { type: "button", class: "secondary", onClick: (event) => this.cancel(event.currentTarget) }, "Cancel run");
    clear(
      this.main,
      h("div", { class: "page-head" },
        h("p", { class: "crumbs" }, h("a", { href: "/chats" }, "Chats"), " / ", h("a", { href: `/chats/${run.chatId}` }, "Chat"), " /"),
        pageHeading(`Run ${shortId(run.id)}`, " ", statusBadge(run.status)),
        this.liveState),
      failure && h("div", { class: "banner banner-failed", role: "alert" }, h("strong", null, "This run failed. "), failure),
      run.status === "cancelled" && h("div", { class: "banner banner-cancelled" }, "This run was cancelled."),
      h("dl", { class: "facts" },
        h("dt", null, "Workflow"), h("dd", null, this.workflow ? h("a", { href: `/workflows/${run.workflowId}` }, name) : name, ` · version ${run.workflowVersion}`),
        h("dt", null, "Requested"), h("dd", null, timeElement(run.createdAt)),
        h("dt", null, "Started"), h("dd", null, timeElement(run.startedAt)),
        h("dt", null, "Took"), h("dd", null, formatDuration(run.startedAt, run.completedAt)),
        run.rerunOf && [h("dt", null, "Re-run of"), h("dd", null, h("a", { href: `/chats/${run.chatId}/runs/${run.rerunOf}` }, shortId(run.rerunOf)))]),
      cancel,
      h("section", { "aria-labelledby": "input-title" }, h("h2", { id: "input-title" }, "Input"), jsonTree(run.input ?? {}, null, true)),
      h("div", { class: "run-visuals" },
        h("section", { "aria-labelledby": "dag-title" }, h("h2", { id: "dag-title" }, "Steps"), this.diagram()),
        h("section", { "aria-labelledby": "timeline-title" }, h("h2", { id: "timeline-title" }, "Timeline"), this.timelineSlot)),
      h("section", { "aria-labelledby": "details-title" }, h("h2", { id: "details-title" }, "Step details"),
        h("ol", { class: "step-list" }, run.steps.map((step) => this.stepItem(step)))),
    );
    for (const details of this.main.querySelectorAll("details[data-key]")) {
      if (open.has(details.dataset.key)) details.open = true;
      if (closed.has(details.dataset.key)) details.open = false;
    }
  }

  renderTimeline() {
    if (this.timelineSlot) clear(this.timelineSlot, timeline(this.run));
  }

  stepItem(step) {
    const key = (part) => `${step.id}:${part}`;
    const streamed = this.deltas.get(step.id);
    return h(
      "li",
      { class: `step status-edge-${step.status}`, "data-step": step.id, "data-status": step.status },
      h("header", { class: "step-head" }, h("h3", null, step.name ? `${step.name} ` : "", h("code", null, step.id)), statusBadge(step.status)),
      h("p", { class: "muted" }, `Tool ${step.toolId} · attempts ${step.attempts ?? 0} · started `, timeElement(step.startedAt), ` · took ${formatDuration(step.startedAt, step.completedAt)}`,
        step.reusedFrom && ` · reused from run ${shortId(step.reusedFrom)}`),
      step.waitingFor && this.decisionForm(step),
      step.progressMessage && step.status === "running" && h("p", { class: "muted" }, `${step.progress ?? ""}% ${step.progressMessage}`),
      step.error && h("div", { class: "step-error", role: step.status === "failed" ? "alert" : undefined }, h("strong", null, `Error${step.error.code ? ` (${step.error.code})` : ""}: `), step.error.message || ""),
      step.inputs !== undefined && h("details", { "data-key": key("inputs") }, h("summary", null, "Inputs (rendered)"), jsonTree(step.inputs, null, true)),
      streamed && step.output === undefined && h("div", { class: "streamed" }, h("p", { class: "muted" }, "Streaming…"), h("pre", null, streamed)),
      step.output != null && h("details", { "data-key": key("output"), open: true }, h("summary", null, "Output"), jsonTree(step.output, null, true)),
      step.logs?.length > 0 && h("details", { "data-key": key("logs") }, h("summary", null, `Logs (${step.logs.length})`),
        h("ol", { class: "logs" }, step.logs.map((log) => h("li", null, h("span", { class: "muted" }, timeElement(log.at), " "), log.message)))),
    );
  }

  /** A waiting step's prompt, with a comment field and Approve and Reject. */
  decisionForm(step) {
    const prompt = step.prompt ?? step.inputs?.prompt;
    const commentId = `decision-${step.id}-comment`;
    const status = h("p", { class: "muted", role: "status" }, "");
    const comment = h("input", { id: commentId, type: "text", maxlength: 2000, autocomplete: "off" });
    const decide = async (approved, event) => {
      for (const button of event.currentTarget.form.querySelectorAll("button")) button.disabled = true;
      status.textContent = approved ? "Approving…" : "Rejecting…";
      try {
        await decideStep(this.run, step.id, approved, comment.value.trim());
      } catch (error) {
        if (error.name === "AbortError") return;
        // 409: decided elsewhere, or it ended meanwhile; the refresh below shows how.
      }
      await this.refresh();
    };
    return h("form", { class: "banner decision", "aria-label": `Decision on ${step.id}`, onSubmit: (event) => event.preventDefault() },
      h("p", null, h("strong", null, "Waiting for a decision"), prompt ? `: ${prompt}` : "."),
      h("label", { for: commentId }, "Comment (optional)"), comment,
      h("div", { class: "actions" },
        h("button", { type: "button", onClick: (event) => decide(true, event) }, "Approve"),
        h("button", { type: "button", class: "secondary", onClick: (event) => decide(false, event) }, "Reject")),
      status);
  }

  async cancel(button) {
    button.disabled = true;
    button.textContent = "Cancelling…";
    try {
      await cancelRun(this.run);
    } catch (error) {
      if (error.name === "AbortError") return;
      // 409: it ended meanwhile; the refresh below shows how.
    }
    await this.refresh();
  }
}
