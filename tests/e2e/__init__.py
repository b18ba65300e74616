"""End-to-end tests: the app in a uvicorn subprocess, driven by real HTTP and WebSocket clients."""
