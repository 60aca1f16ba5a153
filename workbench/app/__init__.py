"""The Streamlit workbench app: `main.run()` routes pages; `views/` has one module per page."""
