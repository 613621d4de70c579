"""DIMSE services: one module per service, translating protocol events to daemon actions."""
