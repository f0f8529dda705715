"""Push connectors: Firebase Cloud Messaging HTTP v1."""
