"""Runwire's own web app: the page every path outside `/api/` answers, and its static assets."""
