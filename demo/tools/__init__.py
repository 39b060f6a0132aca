"""Tools that drive the app: benchmarks of what a visitor sees, the Gallery's builder, the GPU service
check, and the launcher that starts app.py for them and for the tests. The app itself never imports
them; each runs as `python -m demo.tools.<name>`.
"""
