// One chat: its messages (the assistant's answer streaming in), a composer, and its runs as live cards. One
// chat-stream connection per page feeds both; after a drop it resumes from the last event id it saw.

import { allWorkflows, del, get, patch, post } from "../api.js";
import { clearDraft, loadDraft, saveDraft } from "../drafts.js";
import { clear, empty, errorState, field, formMessage, h, loading, pageHeading, setFieldError, setTitle, shortId, timeElement } from "../dom.js";
import { openStream, streamStateText } from "../live.js";
import { navigate } from "../router.js";
import { applyRunEvent, cancelRun, isActive, mergeRun, runCard } from "../runs.js";

const RUNS_PAGE = 20;
const MESSAGES_PAGE = 50;
const REFRESH_DELAY_MS = 250;
const POLL_MS = 2000;

export async function show({ main, params: [chatId], signal, user }) {
  main.append(loading("Loading the chat…"));
  let chat;
  let workflows;
  try {
    [chat, workflows] = await Promise.all([get(`/chats/${chatId}`, { signal }), allWorkflows(user.id, { signal })]);
  } catch (error) {
    if (error.name === "AbortError") return;
    clear(main, pageHeading("Chat"), errorState(error, () => navigate(location.pathname, { replace: true })));
    return;
  }
  const page = new ChatPage({ main, chat, workflows, signal });
  await page.start();
}

class ChatPage {
  constructor({ main, chat, workflows, signal }) {
    Object.assign(this, { main, chat, signal });
    this.workflows = workflows;
    this.workflowNames = new Map(workflows.map((w) => [w.id, w.name]));
    this.runs = new Map(); // id → run, everything loaded so far
    this.cards = new Map(); // id → card element
    this.runsCursor = null;
    this.runsLoaded = false;
    this.messages = new Map(); // id → message
    this.streaming = new Map(); // runId → text the model has sent so far
    this.queued = []; // events that came before the first lists
    this.refreshTimers = new Map();
    this.arriving = new Set();
    this.everLive = false;
  }

  async start() {
    this.build();
    let ready;
    const streamReady = new Promise((resolve) => (ready = resolve));
    this.stream = openStream(`/api/chats/${this.chat.id}/stream`, {
      signal: this.signal,
      onEvent: (type, data) => (this.runsLoaded ? this.handle(type, data) : this.queued.push([type, data])),
      onState: (state, info) => {
        this.liveState.dataset.state = state;
        this.liveState.textContent = streamStateText(state);
        if (state === "live" && this.everLive && !info?.resumed) this.resync();
        if (state === "live") this.everLive = true;
        if (state === "unavailable") this.poll();
        if (state === "live" || state === "unavailable") ready();
      },
    });
    // Lists are read once the stream listens, so that nothing falls between the two.
    await Promise.race([streamReady, new Promise((resolve) => setTimeout(resolve, 3000))]);
    if (this.signal.aborted) return;
    await Promise.all([this.loadRuns(), this.loadMessages()]);
    for (const [type, data] of this.queued.splice(0)) this.handle(type, data);
  }

  build() {
    const title = this.chat.title || "Untitled chat";
    this.heading = pageHeading(title);
    this.liveState = h("p", { class: "live-state", role: "status", "data-state": "connecting" }, "Connecting…");
    this.notices = h("div", { class: "notices", "aria-live": "polite" });
    this.messageList = h("ol", { class: "messages", "aria-label": "Messages", tabindex: "0" });
    this.messagesStatus = h("div");
    this.olderMessages = h("button", { type: "button", class: "secondary small", hidden: true }, "Load earlier messages");
    this.olderMessages.addEventListener("click", () => this.loadMessages(true));
    this.cardList = h("div", { class: "run-cards" });
    this.runsStatus = h("div");
    this.olderRuns = h("button", { type: "button", class: "secondary", hidden: true }, "Load older runs");
    this.olderRuns.addEventListener("click", () => this.loadRuns());
    clear(
      this.main,
      h("div", { class: "page-head" }, h("p", { class: "crumbs" }, h("a", { href: "/chats" }, "Chats"), " /"), this.heading, this.liveState),
      this.settings(),
      this.notices,
      h(
        "div",
        { class: "chat-grid" },
        h("section", { class: "conversation", "aria-labelledby": "conversation-title" }, h("h2", { id: "conversation-title" }, "Conversation"), this.olderMessages, this.messagesStatus, this.messageList, this.composer()),
        h("section", { class: "runs", "aria-labelledby": "runs-title" }, h("h2", { id: "runs-title" }, "Runs"), this.startForm(), this.runsStatus, this.cardList, this.olderRuns),
      ),
    );
  }

  workflowOptions(selected, noneLabel) {
    return [
      h("option", { value: "", selected: !selected }, noneLabel),
      this.workflows.map((w) => h("option", { value: w.id, selected: w.id === selected }, `${w.name} (v${w.version})`)),
    ];
  }

  settings() {
    const titleInput = h("input", { name: "title", value: this.chat.title || "", maxlength: 255 });
    const renameMessages = h("div");
    const rename = h("form", { class: "inline-form", "aria-label": "Rename chat" }, field("Title", titleInput), h("button", { type: "submit" }, "Rename"), renameMessages);
    rename.addEventListener("submit", async (event) => {
      event.preventDefault();
      setFieldError(titleInput, null);
      try {
        this.chat = await patch(`/chats/${this.chat.id}`, { title: titleInput.value.trim() }, { signal: this.signal });
        this.heading.textContent = this.chat.title || "Untitled chat";
        setTitle(this.heading.textContent);
        clear(renameMessages, formMessage("Renamed.", "notice"));
      } catch (error) {
        if (error.name !== "AbortError") setFieldError(titleInput, error.details[0]?.message || error.message);
      }
    });
    const replySelect = h("select", { name: "workflowId" }, this.workflowOptions(this.chat.workflowId, "None: messages start no run"));
    const replyNote = h("p", { class: "hint", role: "status" });
    replySelect.addEventListener("change", async () => {
      setFieldError(replySelect, null);
      replyNote.textContent = "Saving…";
      try {
        this.chat = await patch(`/chats/${this.chat.id}`, { workflowId: replySelect.value || null }, { signal: this.signal });
        replyNote.textContent = "Saved.";
      } catch (error) {
        if (error.name === "AbortError") return;
        replyNote.textContent = "";
        setFieldError(replySelect, error.details[0]?.message || error.message);
      }
    });
    const remove = h("button", { type: "button", class: "danger" }, "Delete chat");
    remove.addEventListener("click", async () => {
      if (!window.confirm("Delete this chat? Its active runs are cancelled, and it and its runs are gone.")) return;
      try {
        await del(`/chats/${this.chat.id}`, { signal: this.signal });
        navigate("/chats");
      } catch (error) {
        if (error.name !== "AbortError") this.notice(error.message);
      }
    });
    return h(
      "details",
      { class: "chat-settings" },
      h("summary", null, "Chat settings"),
      h("div", { class: "settings-body" }, rename, h("div", null, field("Reply workflow", replySelect, { hint: "The workflow a message starts when it names none." }), replyNote), remove),
    );
  }

  composer() {
    const draftKey = `chat:${this.chat.id}:message`;
    const content = h("textarea", { name: "content", rows: 3, maxlength: 32000, required: true, value: loadDraft(draftKey) || "" });
    content.addEventListener("input", () => saveDraft(draftKey, content.value));
    const workflowSelect = h("select", { name: "workflowId" }, this.workflowOptions(null, "The chat's reply workflow"));
    const messages = h("div");
    const form = h(
      "form",
      { class: "composer", "aria-label": "Send a message" },
      field("Message", content, { hint: "Ctrl+Enter sends." }),
      h("div", { class: "composer-row" }, field("Run with", workflowSelect), h("button", { type: "submit" }, "Send")),
      messages,
    );
    content.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clear(messages);
      setFieldError(content, content.value.trim() ? null : "Write a message first.");
      if (!content.value.trim()) return content.focus();
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      try {
        const body = { content: content.value, ...(workflowSelect.value && { workflowId: workflowSelect.value }) };
        const sent = await post(`/chats/${this.chat.id}/messages`, body, { signal: this.signal });
        content.value = "";
        clearDraft(draftKey);
        this.addMessage(sent.message);
        if (sent.run) this.upsertRun(sent.run);
      } catch (error) {
        if (error.name === "AbortError") return;
        const detail = error.details.find((d) => d.field === "content");
        if (detail) setFieldError(content, detail.message);
        else messages.append(formMessage(error.message));
      } finally {
        button.disabled = false;
      }
    });
    return form;
  }

  startForm() {
    const draftKey = `chat:${this.chat.id}:start`;
    const draft = loadDraft(draftKey) || {};
    const workflowSelect = h("select", { name: "workflowId", required: true }, this.workflowOptions(draft.workflowId, "Choose a workflow…"));
    const input = h("textarea", { name: "input", rows: 3, spellcheck: "false", class: "code", value: draft.input ?? "{}" });
    const keep = () => saveDraft(draftKey, { workflowId: workflowSelect.value, input: input.value });
    workflowSelect.addEventListener("change", keep);
    input.addEventListener("input", keep);
    const messages = h("div");
    const form = h(
      "form",
      { class: "start-form", "aria-label": "Start a workflow" },
      field("Workflow", workflowSelect),
      field("Input (a JSON object)", input, { hint: 'For example {"name": "Ada"}' }),
      h("button", { type: "submit" }, "Start run"),
      messages,
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clear(messages);
      setFieldError(workflowSelect, workflowSelect.value ? null : "Choose a workflow.");
      let value = null;
      try {
        value = JSON.parse(input.value || "{}");
        setFieldError(input, value && typeof value === "object" && !Array.isArray(value) ? null : "The input must be a JSON object.");
      } catch (error) {
        setFieldError(input, `This is not JSON: ${error.message}`);
      }
      const invalid = form.querySelector("[aria-invalid=true]");
      if (invalid) return invalid.focus();
      try {
        const run = await post(`/chats/${this.chat.id}/workflow-runs`, { workflowId: workflowSelect.value, input: value }, { signal: this.signal });
        clearDraft(draftKey);
        this.upsertRun(run);
      } catch (error) {
        if (error.name === "AbortError") return;
        let placed = false;
        for (const detail of error.details) {
          const control = detail.field.startsWith("input") ? input : detail.field === "workflowId" ? workflowSelect : null;
          if (control) {
            setFieldError(control, detail.message);
            placed = true;
          }
        }
        if (!placed) messages.append(formMessage(error.message));
      }
    });
    return h("details", { class: "start-workflow", open: !this.workflows.length ? undefined : true }, h("summary", null, "Start a workflow"),
      this.workflows.length ? form : empty("You have no workflows yet.", h("a", { href: "/workflows/new" }, "Create a workflow")));
  }

  // Runs

  async loadRuns() {
    this.olderRuns.hidden = true;
    clear(this.runsStatus, loading("Loading runs…"));
    try {
      const query = new URLSearchParams({ order: "desc", limit: String(RUNS_PAGE), ...(this.runsCursor && { cursor: this.runsCursor }) });
      const page = await get(`/chats/${this.chat.id}/workflow-runs?${query}`, { signal: this.signal });
      clear(this.runsStatus);
      for (const run of page.workflowRuns) this.upsertRun(run);
      this.runsCursor = page.nextCursor;
      this.olderRuns.hidden = !this.runsCursor;
      this.runsLoaded = true;
      this.showRunsEmpty();
    } catch (error) {
      if (error.name !== "AbortError") clear(this.runsStatus, errorState(error, () => this.loadRuns()));
    }
  }

  showRunsEmpty() {
    if (!this.runs.size) clear(this.runsStatus, empty("No runs in this chat yet. Send a message, or start a workflow above."));
    else if (this.runsStatus.querySelector(".state-empty")) clear(this.runsStatus);
  }

  /** Put a run on screen (new or fresher copy) in newest-first order. */
  upsertRun(fetched) {
    const run = mergeRun(this.runs.get(fetched.id), fetched);
    this.runs.set(run.id, run);
    this.renderCard(run);
    this.showRunsEmpty();
  }

  renderCard(run) {
    const card = runCard(run, { workflowName: this.workflowNames.get(run.workflowId), onCancel: (r, button) => this.cancel(r, button) });
    const existing = this.cards.get(run.id);
    this.cards.set(run.id, card);
    if (existing) {
      const hadFocus = existing.contains(document.activeElement);
      existing.replaceWith(card);
      if (hadFocus) (card.querySelector("button") || card.querySelector("a")).focus();
      return;
    }
    const newer = [...this.cardList.children].find((el) => this.runs.get(el.dataset.run)?.createdAt < run.createdAt);
    this.cardList.insertBefore(card, newer || null);
  }

  async cancel(run, button) {
    button.disabled = true;
    button.textContent = "Cancelling…";
    try {
      this.upsertRun(await cancelRun(run));
    } catch (error) {
      if (error.name === "AbortError") return;
      this.notice(error.status === 409 ? "That run had already ended." : error.message);
      this.refreshRun(run.id);
    }
  }

  async refreshRun(runId) {
    try {
      const run = await get(`/chats/${this.chat.id}/workflow-runs/${runId}`, { signal: this.signal });
      const oldest = [...this.runs.values()].reduce((a, r) => (a && a.createdAt < r.createdAt ? a : r), null);
      // A run older than the loaded pages stays for "Load older runs" to bring.
      if (this.runs.has(runId) || !this.runsCursor || !oldest || run.createdAt >= oldest.createdAt) this.upsertRun(run);
    } catch (error) {
      if (error.name !== "AbortError" && error.status !== 404) this.notice(error.message);
    }
  }

  scheduleRefresh(runId) {
    clearTimeout(this.refreshTimers.get(runId));
    this.refreshTimers.set(runId, setTimeout(() => this.refreshRun(runId), REFRESH_DELAY_MS));
  }

  // Events

  handle(type, data) {
    if (type === "message_created") {
      this.addMessage(data.message);
      return;
    }
    if (!data || !data.runId) return;
    if (type === "step_output_delta") this.appendStreaming(data.runId, data.text);
    const run = this.runs.get(data.runId);
    if (!run) {
      this.showNewRun(data.runId);
      return;
    }
    if (applyRunEvent(run, type, data)) this.renderCard(run);
    // The event moved the card at once; a read shortly after fills in timestamps, errors and cancelled steps.
    this.scheduleRefresh(data.runId);
  }

  /** A run's first event: its card is read at once (one read at a time), then caught up like any other. */
  async showNewRun(runId) {
    if (this.arriving.has(runId)) return;
    this.arriving.add(runId);
    try {
      await this.refreshRun(runId);
    } finally {
      this.arriving.delete(runId);
    }
    this.scheduleRefresh(runId);
  }

  /** After a reconnect that could not resume (no event id yet): read the newest page again. */
  async resync() {
    try {
      const page = await get(`/chats/${this.chat.id}/workflow-runs?order=desc&limit=${RUNS_PAGE}`, { signal: this.signal });
      for (const run of page.workflowRuns) this.upsertRun(run);
      await this.loadMessages(false, true);
    } catch (error) {
      if (error.name !== "AbortError") this.notice(error.message);
    }
  }

  /** Without a chat stream (an older server), read the newest runs every few seconds. */
  poll() {
    const timer = setInterval(async () => {
      await this.resync();
      for (const run of this.runs.values()) if (isActive(run)) this.scheduleRefresh(run.id);
    }, POLL_MS);
    this.signal.addEventListener("abort", () => clearInterval(timer));
  }

  notice(text) {
    const note = formMessage(text);
    this.notices.append(note);
    setTimeout(() => note.remove(), 8000);
  }

  // Messages

  async loadMessages(older = false, latestOnly = false) {
    if (!latestOnly) clear(this.messagesStatus, loading("Loading messages…"));
    this.olderMessages.hidden = true;
    try {
      const query = new URLSearchParams({ order: "desc", limit: String(MESSAGES_PAGE), ...(older && this.messagesCursor && { cursor: this.messagesCursor }) });
      const page = await get(`/chats/${this.chat.id}/messages?${query}`, { signal: this.signal });
      for (const message of page.messages) this.addMessage(message);
      if (!latestOnly) this.messagesCursor = page.nextCursor;
      this.olderMessages.hidden = !this.messagesCursor;
      clear(this.messagesStatus);
      if (!this.messages.size) this.messagesStatus.append(empty("No messages yet. Write the first one below."));
    } catch (error) {
      if (error.name !== "AbortError") clear(this.messagesStatus, errorState({ message: `Messages could not be loaded: ${error.message}` }, () => this.loadMessages()));
    }
  }

  addMessage(message) {
    if (this.messages.has(message.id)) return;
    this.messages.set(message.id, message);
    if (message.role === "assistant" && message.runId) {
      this.streaming.delete(message.runId);
      this.messageList.querySelector(`[data-streaming="${message.runId}"]`)?.remove();
    }
    const item = messageItem(message);
    const later = [...this.messageList.children].find((el) => el.dataset.createdAt > message.createdAt);
    this.messageList.insertBefore(item, later || null);
    this.messagesStatus.querySelector(".state-empty")?.remove();
    if (!later) item.scrollIntoView({ block: "nearest" });
  }

  appendStreaming(runId, text) {
    const sofar = (this.streaming.get(runId) || "") + (text || "");
    this.streaming.set(runId, sofar);
    let item = this.messageList.querySelector(`[data-streaming="${runId}"]`);
    if (!item) {
      item = h("li", { class: "message assistant streaming", "data-streaming": runId, "aria-busy": "true", "data-created-at": "~" },
        h("p", { class: "message-who" }, "Assistant ", h("span", { class: "muted" }, "· writing…")), h("div", { class: "message-text" }));
      this.messageList.append(item);
    }
    item.querySelector(".message-text").textContent = sofar;
    item.scrollIntoView({ block: "nearest" });
  }
}

function messageItem(message) {
  return h(
    "li",
    { class: `message ${message.role}${message.error ? " message-error" : ""}`, "data-message": message.id, "data-created-at": message.createdAt },
    h("p", { class: "message-who" }, message.role === "user" ? "You" : "Assistant", " ", h("span", { class: "muted" }, "· ", timeElement(message.createdAt)),
      message.runId && h("span", { class: "muted" }, " · ", h("a", { href: `/chats/${message.chatId}/runs/${message.runId}` }, `run ${shortId(message.runId)}`))),
    h("div", { class: "message-text" }, message.content),
    message.error && h("p", { class: "run-failure" }, `${message.error.code ? `${message.error.code}: ` : ""}${message.error.message || ""}`),
  );
}
