"""The Gradio demo: services (what the app does) and ui (how it looks)."""
