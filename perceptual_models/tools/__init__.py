"""Tools that use the library but are not part of it: the paper's Tables 1 and 2 (bench, evaluate),
building and publishing the Hub folder (publish), deploying the app as a Space (space), and synthetic
video clips (clips). Only cli.py imports them; no other library module does, nor does the app.
"""
