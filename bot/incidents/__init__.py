"""Incidents: declaring, war rooms, roles, the lifecycle, and the read models the rest works
from."""
