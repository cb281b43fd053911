// The app's entry: the routes (one screen module each, under screens/), the header, and the screen swap.

import { post } from "./api.js";
import { clear, errorState, h, setTitle } from "./dom.js";
import { match, navigate, onRoute, route, startRouter } from "./router.js";
import { currentUser, setUser } from "./session.js";
import * as auth from "./screens/auth.js";
import * as chat from "./screens/chat.js";
import * as chats from "./screens/chats.js";
import * as run from "./screens/run.js";
import * as tools from "./screens/tools.js";
import * as workflow from "./screens/workflow.js";
import * as workflows from "./screens/workflows.js";

route(/^\/sign-in\/?$/, auth.signIn, { public: true });
route(/^\/sign-up\/?$/, auth.signUp, { public: true });
route(/^\/$/, () => navigate("/chats", { replace: true }));
route(/^\/chats\/?$/, chats.show);
route(/^\/chats\/([^/]+)\/?$/, chat.show);
route(/^\/chats\/([^/]+)\/runs\/([^/]+)\/?$/, run.show);
route(/^\/workflows\/?$/, workflows.show);
route(/^\/workflows\/new\/?$/, workflow.show);
route(/^\/workflows\/([^/]+)\/?$/, workflow.show);
route(/^\/tools\/?$/, tools.show);

const main = document.getElementById("main");

function renderHeader(user) {
  document.getElementById("nav").hidden = !user;
  for (const link of document.querySelectorAll("#nav a")) {
    const here = location.pathname === link.getAttribute("href") || location.pathname.startsWith(`${link.getAttribute("href")}/`);
    if (here) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  clear(
    document.getElementById("account"),
    user && h("span", { class: "muted account-name" }, user.name || user.email),
    user && h("button", { type: "button", class: "secondary small", onClick: signOut }, "Sign out"),
  );
}

async function signOut() {
  try {
    await post("/auth/sign-out");
  } catch {
    // Signed out already or unreachable: either way the page forgets the user.
  }
  setUser(null);
  navigate("/sign-in", { replace: true });
}

onRoute(async (pathname, query, signal) => {
  const found = match(pathname);
  let user;
  try {
    user = await currentUser();
  } catch (error) {
    renderHeader(null);
    clear(main, errorState(error, () => location.reload()));
    return;
  }
  if (signal.aborted) return;
  if (!found) {
    renderHeader(user);
    setTitle("Not found");
    clear(main, h("h1", null, "Page not found"), h("p", null, "There is nothing at this address. ", h("a", { href: "/chats" }, "Go to your chats.")));
    return;
  }
  if (!found.entry.public && !user) {
    navigate(`/sign-in?${new URLSearchParams({ next: pathname + location.search })}`, { replace: true });
    return;
  }
  renderHeader(found.entry.public ? null : user);
  clear(main);
  await found.entry.screen({ main, params: found.params, query, signal, user });
  // Move focus to the new screen's heading so that keyboard and screen-reader users start there.
  if (!signal.aborted && !main.contains(document.activeElement)) main.querySelector("h1")?.focus?.();
});

startRouter();
