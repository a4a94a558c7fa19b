"""The DPP HTTP service (FastAPI) and the inbox worker."""
