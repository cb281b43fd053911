// Who is signed in: read once from GET /api/auth/session, then kept in step with sign-in and sign-out.

import { get } from "./api.js";

let user;

export async function currentUser() {
  if (user === undefined) {
    try {
      user = (await get("/auth/session")).user;
    } catch (error) {
      if (error.status !== 401) throw error;
      user = null;
    }
  }
  return user;
}

export function setUser(value) {
  user = value;
}
