// What the chat page and the run page share about runs: applying stream events, the pipeline of steps, the card,
// the timeline. A run's state only moves forward here, so an event and a fetched copy can arrive in any order.

import { post } from "./api.js";
import { FINAL, formatDuration, h, shortId, statusBadge, statusLabel, timeElement } from "./dom.js";

const RANK = { pending: 0, running: 1, completed: 2, failed: 2, cancelled: 2 };

/** The later of two statuses: a final status is never undone, nor running turned back to pending. */
export function laterStatus(current, next) {
  if (!current) return next;
  return (RANK[next] ?? 0) > (RANK[current] ?? 0) ? next : current;
}

/** Merge a freshly fetched run into the one on screen, keeping whatever the stream already moved further. */
export function mergeRun(onScreen, fetched) {
  if (!onScreen) return fetched;
  const status = laterStatus(fetched.status, onScreen.status);
  const stepsOnScreen = new Map((onScreen.steps || []).map((step) => [step.id, step]));
  const steps = fetched.steps.map((step) => {
    const seen = stepsOnScreen.get(step.id);
    const stepStatus = laterStatus(step.status, seen?.status);
    return stepStatus === step.status ? step : { ...step, status: stepStatus, error: step.error ?? seen.error };
  });
  return status === fetched.status ? { ...fetched, steps } : { ...fetched, status, error: fetched.error ?? onScreen.error, steps };
}

/** Apply one run event (of a run stream or a chat stream) to `run`, in place. Returns true if it changed. */
export function applyRunEvent(run, type, data) {
  const step = data.stepId ? run.steps.find((s) => s.id === data.stepId) : null;
  const now = new Date().toISOString();
  const moveStep = (status, extra = {}) => {
    if (!step) return false;
    const next = laterStatus(step.status, status);
    if (next === step.status && !Object.keys(extra).length) return false;
    Object.assign(step, { status: next }, extra);
    return true;
  };
  switch (type) {
    case "run_started":
      run.status = laterStatus(run.status, "running");
      run.startedAt ??= now;
      return true;
    case "step_started":
      return moveStep("running", { startedAt: step?.startedAt ?? now, waitingFor: null });
    case "step_waiting":
      return moveStep("running", { waitingFor: "decision", prompt: data.prompt });
    case "step_progress":
      return moveStep("running", { progress: data.progress, progressMessage: data.message });
    case "step_completed":
      return moveStep("completed", { completedAt: step?.completedAt ?? now, waitingFor: null, ...(data.result !== undefined && { output: data.result }) });
    case "step_failed":
      return moveStep("failed", { completedAt: step?.completedAt ?? now, error: data.error ?? step?.error });
    case "run_completed":
      run.status = laterStatus(run.status, data.status || "completed");
      run.completedAt ??= now;
      return true;
    case "run_failed":
      run.status = laterStatus(run.status, "failed");
      run.error ??= data.error;
      run.completedAt ??= now;
      return true;
    default:
      return false;
  }
}

export function isActive(run) {
  return !FINAL.has(run.status);
}

/** The first failed step and what it said, for the line at the top of a failed run. */
export function failureSummary(run) {
  if (run.status !== "failed") return null;
  const step = run.steps.find((s) => s.status === "failed");
  const error = step?.error || run.error;
  const where = step ? `Step “${step.name || step.id}” failed` : "The run failed";
  return `${where}: ${error?.message || error?.code || "no reason was given"}${error?.code ? ` (${error.code})` : ""}`;
}

/** The steps, in dependency order, as a row of status chips. */
export function pipeline(run) {
  return h(
    "ol",
    { class: "pipeline", "aria-label": "Steps" },
    run.steps.map((step) =>
      h(
        "li",
        { class: `pipe-step status-${step.status}`, "data-step": step.id, "data-status": step.status, title: step.error?.message || undefined },
        h("span", { class: "status-mark", "aria-hidden": "true" }, { pending: "○", running: "◔", completed: "✓", failed: "✕", cancelled: "⊘" }[step.status]),
        h("span", { class: "pipe-name" }, step.name || step.id),
        h("span", { class: "visually-hidden" }, `: ${statusLabel(step.status)}`),
        step.waitingFor && h("span", { class: "pipe-note" }, " waiting for a decision"),
      ),
    ),
  );
}

/** Ask to cancel; the stream (or the answer) then moves the run on screen. */
export async function cancelRun(run) {
  return post(`/chats/${run.chatId}/workflow-runs/${run.id}/cancel`);
}

/** Approve or reject a step that waits for a decision; the answer is the run with the step ended. */
export async function decideStep(run, stepId, approved, comment) {
  return post(`/chats/${run.chatId}/workflow-runs/${run.id}/steps/${encodeURIComponent(stepId)}/decision`, { approved, comment: comment || null });
}

/** A run as a card in a chat: status, workflow, pipeline, failure, and cancel while it may still change. */
export function runCard(run, { workflowName, onCancel }) {
  const failure = failureSummary(run);
  const name = workflowName || `workflow ${shortId(run.workflowId)}`;
  const titleId = `run-${run.id}-title`;
  return h(
    "article",
    { class: `run-card status-edge-${run.status}`, "data-run": run.id, "data-status": run.status, "aria-labelledby": titleId },
    h(
      "header",
      { class: "run-card-head" },
      h("h3", { id: titleId }, h("a", { href: `/chats/${run.chatId}/runs/${run.id}` }, name, h("span", { class: "muted" }, ` · run ${shortId(run.id)}`))),
      statusBadge(run.status),
    ),
    h("p", { class: "run-meta muted" }, "Requested ", timeElement(run.createdAt), run.startedAt && ` · took ${formatDuration(run.startedAt, run.completedAt)}`),
    pipeline(run),
    failure && h("p", { class: "run-failure" }, failure),
    isActive(run) &&
      h("button", { type: "button", class: "secondary small", onClick: (event) => onCancel(run, event.currentTarget), "aria-label": `Cancel run ${shortId(run.id)} of ${name}` }, "Cancel run"),
  );
}

/** Gantt bars: each step's start and duration against the run's span. */
export function timeline(run) {
  const started = run.steps.filter((s) => s.startedAt);
  if (!started.length) return h("p", { class: "state state-empty" }, "No step has started yet.");
  const t0 = Math.min(...started.map((s) => Date.parse(s.startedAt)), run.startedAt ? Date.parse(run.startedAt) : Infinity);
  const ends = run.steps.map((s) => (s.completedAt ? Date.parse(s.completedAt) : s.startedAt ? Date.now() : 0));
  const t1 = Math.max(...ends, run.completedAt ? Date.parse(run.completedAt) : 0, t0 + 1);
  const span = t1 - t0;
  return h(
    "div",
    { class: "timeline" },
    h("p", { class: "muted timeline-scale" }, `0 s — ${formatDuration(new Date(t0).toISOString(), new Date(t1).toISOString())}`),
    h(
      "ol",
      { class: "timeline-rows", "aria-label": "Timeline of steps" },
      run.steps.map((step) => {
        const start = step.startedAt ? Date.parse(step.startedAt) : null;
        const end = step.completedAt ? Date.parse(step.completedAt) : Date.now();
        const bar = h("span", { class: `timeline-bar status-${step.status}` });
        if (start != null) {
          bar.style.left = `${((start - t0) / span) * 100}%`;
          bar.style.width = `${Math.max(0.8, ((end - start) / span) * 100)}%`;
        } else bar.hidden = true;
        const words = start == null
          ? `${statusLabel(step.status)}, did not start`
          : `${statusLabel(step.status)}, started at +${formatDuration(new Date(t0).toISOString(), step.startedAt)}, took ${formatDuration(step.startedAt, step.completedAt)}`;
        return h("li", { class: "timeline-row" }, h("span", { class: "timeline-label" }, step.name || step.id), h("span", { class: "timeline-track" }, bar), h("span", { class: "timeline-words" }, words));
      }),
    ),
  );
}
