"""The Streamlit workbench app: `main.run()` routes pages; `views/` has one module per page;
`jobs` runs training, evaluation and augmentation in processes of their own (for the app and the
CLI's `workbench jobs`; it imports no streamlit)."""
