// The workflow list: name, description, version, a page at a time.

import { get } from "../api.js";
import { clear, empty, errorState, h, loading, pageHeading, timeElement } from "../dom.js";

export async function show({ main, signal, user }) {
  const list = h("ul", { class: "list", "aria-label": "Your workflows" });
  const status = h("div");
  const more = h("button", { type: "button", class: "secondary", hidden: true }, "Load more workflows");
  main.append(
    h("div", { class: "page-head" }, pageHeading("Workflows"), h("a", { href: "/workflows/new", class: "button" }, "New workflow")),
    status,
    list,
    more,
  );
  let cursor = null;
  async function loadPage() {
    more.hidden = true;
    clear(status, loading("Loading workflows…"));
    try {
      const query = new URLSearchParams({ limit: "50", ...(cursor && { cursor }) });
      const page = await get(`/users/${user.id}/workflows?${query}`, { signal });
      clear(status);
      for (const workflow of page.workflows) {
        list.append(
          h("li", null, h("a", { href: `/workflows/${workflow.id}`, class: "list-link" },
            h("span", { class: "list-title" }, workflow.name),
            h("span", { class: "muted" }, `${workflow.steps.length} step${workflow.steps.length === 1 ? "" : "s"} · version ${workflow.version} · updated `, timeElement(workflow.updatedAt)),
            workflow.description && h("span", { class: "list-description" }, workflow.description))),
        );
      }
      if (!list.children.length) clear(status, empty("No workflows yet.", h("a", { href: "/workflows/new", class: "button" }, "Create your first workflow")));
      cursor = page.nextCursor;
      more.hidden = !cursor;
    } catch (error) {
      if (error.name !== "AbortError") clear(status, errorState(error, loadPage));
    }
  }
  more.addEventListener("click", loadPage);
  await loadPage();
}
