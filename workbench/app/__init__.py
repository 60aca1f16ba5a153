"""The Streamlit workbench app: `main.run()` routes pages; `views/` has one module per page;
`state` holds what pages share (the stores, the busy notice, session-state keys, formatting);
`job_panel` is the background-job panel of the Runs and Augmentation pages; `jobs` runs
training, evaluation and augmentation in processes of their own (for the app and the CLI's
`workbench jobs`; it imports no streamlit)."""
