"""Training scripts: one loop, three tasks (style, sr, srcnn)."""
