"""The REST API (FastAPI) under /api/v1: one router module per area, schemas beside it."""
