"""One module per page; each exposes `render()`, reads widgets, calls pipelines, shows results."""
