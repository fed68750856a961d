"""Browser pages of the curation app, a module each: projects, imports, review and examples (curation/urls.py).

One URL serves the full page or, for htmx, the fragment that changes (templates/curation/htmx/).
"""
