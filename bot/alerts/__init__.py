"""Alertmanager intake: parsing its webhook and turning firing groups into incidents."""
