"""Avatars: what the compositor draws each frame (the built-in drawn person lives in drawn.py)."""
