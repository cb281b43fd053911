// Client-side routing: the History API, links intercepted, one screen at a time with its own cleanup.

const routes = [];
let current = null; // {controller} of the screen on show
let renderRoute = null;

export function route(pattern, screen, options = {}) {
  routes.push({ pattern, screen, ...options });
}

export function match(pathname) {
  for (const entry of routes) {
    const found = pathname.match(entry.pattern);
    if (found) return { entry, params: found.slice(1).map(decodeURIComponent) };
  }
  return null;
}

export function onRoute(render) {
  renderRoute = render;
}

export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  show();
}

/** Leave the current screen: aborts its requests and closes its streams. */
export function leaveScreen() {
  current?.controller.abort();
  current = null;
}

export function show() {
  leaveScreen();
  const controller = new AbortController();
  current = { controller };
  renderRoute?.(location.pathname, new URLSearchParams(location.search), controller.signal);
}

/** Any 401 outside sign-in: back to sign-in, then here again. What was typed stays in the screens' drafts. */
export function sessionExpired() {
  if (location.pathname === "/sign-in" || location.pathname === "/sign-up") return;
  const next = location.pathname + location.search;
  navigate(`/sign-in?${new URLSearchParams({ next, expired: "1" })}`, { replace: true });
}

export function startRouter() {
  document.addEventListener("click", (event) => {
    const link = event.target.closest("a[href]");
    if (!link || event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey || link.target) return;
    const url = new URL(link.href, location.href);
    if (url.origin !== location.origin || url.pathname.startsWith("/api/") || url.pathname.startsWith("/assets/")) return;
    event.preventDefault();
    if (url.pathname + url.search !== location.pathname + location.search) navigate(url.pathname + url.search);
  });
  window.addEventListener("popstate", show);
  show();
}
