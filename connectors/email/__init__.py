"""Email connectors: SendGrid v3 and plain SMTP."""
