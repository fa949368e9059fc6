"""Archiving ended incidents' war rooms, and what happens to a room when its incident reopens."""
