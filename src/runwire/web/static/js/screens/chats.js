// The chat list: newest first, a page at a time, and a form to start a new chat.

import { get, post } from "../api.js";
import { clear, empty, errorState, field, formMessage, h, loading, pageHeading, timeElement } from "../dom.js";
import { navigate } from "../router.js";

const PAGE = 30;

export async function show({ main, signal, user }) {
  const titleInput = h("input", { name: "title", maxlength: 255, placeholder: "e.g. Weekly report" });
  const formMessages = h("div");
  const newChat = h(
    "form",
    { class: "inline-form", "aria-label": "New chat" },
    field("Title of a new chat (optional)", titleInput),
    h("button", { type: "submit" }, "New chat"),
    formMessages,
  );
  newChat.addEventListener("submit", async (event) => {
    event.preventDefault();
    clear(formMessages);
    try {
      const title = titleInput.value.trim();
      const chat = await post("/chats", title ? { title } : {}, { signal });
      navigate(`/chats/${chat.id}`);
    } catch (error) {
      if (error.name !== "AbortError") formMessages.append(formMessage(error.message));
    }
  });

  const list = h("ul", { class: "list chat-list", "aria-label": "Your chats" });
  const status = h("div");
  const more = h("button", { type: "button", class: "secondary", hidden: true }, "Load more chats");
  main.append(pageHeading("Chats"), newChat, h("section", { "aria-label": "Chats" }, status, list, more));

  let cursor = null;
  async function loadPage() {
    more.hidden = true;
    clear(status, loading("Loading chats…"));
    try {
      const query = new URLSearchParams({ limit: String(PAGE), ...(cursor && { cursor }) });
      const page = await get(`/users/${user.id}/chats?${query}`, { signal });
      clear(status);
      for (const chat of page.chats) {
        list.append(
          h("li", null, h("a", { href: `/chats/${chat.id}`, class: "list-link" }, h("span", { class: "list-title" }, chat.title || "Untitled chat"), h("span", { class: "muted" }, "Updated ", timeElement(chat.updatedAt)))),
        );
      }
      if (!list.children.length) clear(status, empty("No chats yet. Give one a title above, or just press “New chat”."));
      cursor = page.nextCursor;
      more.hidden = !cursor;
    } catch (error) {
      if (error.name !== "AbortError") clear(status, errorState(error, loadPage));
    }
  }
  more.addEventListener("click", loadPage);
  await loadPage();
}
