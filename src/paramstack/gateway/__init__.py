"""The serving half: FastAPI app, request path, logs and metrics. Never imports the build side."""
