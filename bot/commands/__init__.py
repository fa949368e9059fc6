"""The /incident command: parsing, carrying out, and the forms that stand in for it."""
