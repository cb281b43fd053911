// Sign in and sign up. Errors show at their field; after a session expired, sign-in returns to where the person was.

import { post } from "../api.js";
import { clear, field, formMessage, h, pageHeading, setFieldError } from "../dom.js";
import { navigate } from "../router.js";
import { setUser } from "../session.js";

const MIN_PASSWORD = 8;

function safeNext(query) {
  const next = query.get("next");
  return next && next.startsWith("/") && !next.startsWith("//") ? next : "/chats";
}

function authForm({ main, query, signal }, { title, fields, submitLabel, endpoint, switchText, switchLink }) {
  const controls = {};
  const messages = h("div", { class: "form-messages" });
  if (query.get("expired")) messages.append(formMessage("Your session has ended. Sign in again to carry on where you were: nothing you typed is lost.", "notice"));
  const form = h(
    "form",
    { class: "card auth-form", novalidate: true, "aria-labelledby": "auth-title" },
    messages,
    fields.map(({ name, label, type, autocomplete, hint }) => {
      controls[name] = h("input", { name, type, autocomplete, required: true });
      return field(label, controls[name], { hint, name });
    }),
    h("button", { type: "submit" }, submitLabel),
    h("p", { class: "muted" }, switchText, " ", h("a", { href: switchLink + location.search }, switchLink === "/sign-up" ? "Create an account" : "Sign in")),
  );

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clear(messages);
    const body = Object.fromEntries(Object.entries(controls).map(([name, control]) => [name, control.value]));
    let first = null;
    for (const [name, control] of Object.entries(controls)) {
      let problem = control.value.trim() ? null : "This field is required.";
      if (!problem && name === "password" && endpoint.includes("sign-up") && control.value.length < MIN_PASSWORD) {
        problem = `Use at least ${MIN_PASSWORD} characters.`;
      }
      if (!problem && name === "email" && !control.value.includes("@")) problem = "Enter an email address like ada@example.com.";
      setFieldError(control, problem);
      if (problem) first ??= control;
    }
    if (first) {
      first.focus();
      return;
    }
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const data = await post(endpoint, body, { signal });
      setUser(data.user);
      navigate(safeNext(query), { replace: true });
    } catch (error) {
      if (error.name === "AbortError") return;
      showServerError(error, controls, messages);
    } finally {
      button.disabled = false;
    }
  });

  const heading = pageHeading(title);
  heading.id = "auth-title";
  main.append(h("section", { class: "auth" }, heading, form));
}

function showServerError(error, controls, messages) {
  let placed = false;
  for (const { field: name, message } of error.details) {
    const control = controls[name];
    if (control) {
      setFieldError(control, message);
      if (!placed) control.focus();
      placed = true;
    }
  }
  if (error.status === 409 && controls.email) {
    setFieldError(controls.email, error.message);
    controls.email.focus();
    placed = true;
  }
  if (error.status === 401 && controls.password) {
    setFieldError(controls.password, error.message);
    controls.password.focus();
    placed = true;
  }
  if (!placed) {
    const wait = error.status === 429 && error.retryAfter ? ` Try again in ${error.retryAfter} seconds.` : "";
    messages.append(formMessage(error.message + wait));
  }
}

export function signIn(context) {
  authForm(context, {
    title: "Sign in",
    fields: [
      { name: "email", label: "Email", type: "email", autocomplete: "username" },
      { name: "password", label: "Password", type: "password", autocomplete: "current-password" },
    ],
    submitLabel: "Sign in",
    endpoint: "/auth/sign-in/email",
    switchText: "New to Runwire?",
    switchLink: "/sign-up",
  });
}

export function signUp(context) {
  authForm(context, {
    title: "Create your account",
    fields: [
      { name: "name", label: "Name", type: "text", autocomplete: "name" },
      { name: "email", label: "Email", type: "email", autocomplete: "email" },
      { name: "password", label: "Password", type: "password", autocomplete: "new-password", hint: `At least ${MIN_PASSWORD} characters.` },
    ],
    submitLabel: "Create account",
    endpoint: "/auth/sign-up/email",
    switchText: "Already have an account?",
    switchLink: "/sign-in",
  });
}
