// Server-Sent Events over fetch: unlike EventSource it can send Last-Event-ID on every reconnect, and tell a 401
// (session gone) or a 404 (no such stream) from a dropped connection. One reader per stream; the caller closes it.

import { sessionExpired } from "./router.js";

const FIRST_RETRY_MS = 500;
const LAST_RETRY_MS = 8000;

/**
 * Open `url` and call onEvent(type, data, id) for each event. onState(state) hears "connecting", "live",
 * "reconnecting", "ended" (the server closed after a final event) and "unavailable" (the stream does not exist).
 * `finalTypes`: events after which the server closes the stream for good.
 */
export function openStream(url, { onEvent, onState = () => {}, finalTypes = [], signal }) {
  let lastId = null;
  let stopped = false;
  let sawFinal = false;
  let controller = null;
  let retryMs = FIRST_RETRY_MS;

  const close = () => {
    stopped = true;
    controller?.abort();
  };
  signal?.addEventListener("abort", close);

  async function readOnce() {
    controller = new AbortController();
    const headers = { Accept: "text/event-stream" };
    if (lastId != null) headers["Last-Event-ID"] = lastId;
    const response = await fetch(url, { headers, signal: controller.signal, credentials: "same-origin", cache: "no-store" });
    if (response.status === 401) {
      stopped = true;
      sessionExpired();
      return;
    }
    if (response.status === 404 || response.status === 403) {
      stopped = true;
      onState("unavailable");
      return;
    }
    if (!response.ok || !response.body) throw new Error(`stream answered ${response.status}`);
    onState("live", { resumed: lastId != null });
    retryMs = FIRST_RETRY_MS;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let event = { type: "message", data: [], id: null };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      for (;;) {
        const end = buffer.search(/[\r\n]/);
        // A lone "\r" at the end may be the first half of "\r\n": wait for the next chunk.
        if (end < 0 || (buffer[end] === "\r" && end === buffer.length - 1)) break;
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + (buffer[end] === "\r" && buffer[end + 1] === "\n" ? 2 : 1));
        if (line === "") {
          if (event.id != null) lastId = event.id;
          if (event.data.length) dispatch(event);
          event = { type: "message", data: [], id: null };
        } else if (!line.startsWith(":")) {
          const colon = line.indexOf(":");
          const name = colon < 0 ? line : line.slice(0, colon);
          const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (name === "event") event.type = text;
          else if (name === "data") event.data.push(text);
          else if (name === "id") event.id = text;
        }
      }
    }
  }

  function dispatch(event) {
    let data;
    try {
      data = JSON.parse(event.data.join("\n"));
    } catch {
      data = event.data.join("\n");
    }
    if (finalTypes.includes(event.type)) sawFinal = true;
    onEvent(event.type, data, event.id);
    // Announced on the document too, for whoever watches the page's traffic (the browser tests do).
    document.dispatchEvent(new CustomEvent("runwire:stream-event", { detail: { url, type: event.type, id: event.id } }));
  }

  (async () => {
    while (!stopped) {
      onState(lastId == null ? "connecting" : "reconnecting");
      try {
        await readOnce();
      } catch {
        // Dropped or refused: try again below.
      }
      if (stopped) return;
      if (sawFinal) {
        onState("ended");
        return;
      }
      onState("reconnecting");
      await new Promise((resolve) => setTimeout(resolve, retryMs));
      retryMs = Math.min(retryMs * 2, LAST_RETRY_MS);
    }
  })();

  return { close, get lastEventId() { return lastId; } };
}

/** The words shown for a stream's state, for people and screen readers alike. */
export function streamStateText(state) {
  return {
    connecting: "Connecting…",
    live: "Live",
    reconnecting: "Connection lost — reconnecting…",
    ended: "Finished",
    unavailable: "Live updates unavailable",
  }[state] || state;
}
