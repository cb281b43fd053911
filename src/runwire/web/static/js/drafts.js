// What a person typed, kept in sessionStorage until it is sent: a session that expires loses none of it.

const PREFIX = "runwire:draft:";

export function saveDraft(key, value) {
  try {
    sessionStorage.setItem(PREFIX + key, JSON.stringify(value));
  } catch {
    // Storage full or disabled: the draft lives only on screen.
  }
}

export function loadDraft(key) {
  try {
    const text = sessionStorage.getItem(PREFIX + key);
    return text == null ? null : JSON.parse(text);
  } catch {
    return null;
  }
}

export function clearDraft(key) {
  try {
    sessionStorage.removeItem(PREFIX + key);
  } catch {
    // Nothing to clear.
  }
}
