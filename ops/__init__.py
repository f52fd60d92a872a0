"""Process plumbing shared by the API, the worker and the tools: how to reach Temporal
(TLS, API key, metrics runtime) and tracing. Not imported by workflows."""
