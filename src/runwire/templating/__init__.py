"""Users' Jinja2 templates: the sandbox that parses and renders them, and the worker processes that render them
apart from the server. Kept free of heavy imports: each template worker imports this package."""
