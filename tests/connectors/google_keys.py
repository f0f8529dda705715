"""A real RSA service-account key for tests (generated once; google-auth signs with it)."""
from __future__ import annotations

import functools
import json

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

TOKEN_URI = "https://oauth2.googleapis.com/token"
ACCESS_TOKEN = "ya29.c.fake-access-token-QmZ8"


@functools.lru_cache(maxsize=1)
def service_account_json(project_id: str = "likely-test") -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return json.dumps({
        "type": "service_account", "project_id": project_id,
        "private_key_id": "4f1c3c2a9b8e7d6f5a4b3c2d1e0f9a8b7c6d5e4f",
        "private_key": pem, "client_email": f"likely@{project_id}.iam.gserviceaccount.com",
        "client_id": "109876543210987654321", "token_uri": TOKEN_URI,
    })


def token_ok(rsps, token: str = ACCESS_TOKEN) -> None:
    rsps.add("POST", TOKEN_URI, json={"access_token": token, "expires_in": 3599,
                                      "token_type": "Bearer"})


def token_refused(rsps) -> None:
    rsps.add("POST", TOKEN_URI, status=400, json={"error": "invalid_grant",
                                                  "error_description": "Invalid JWT Signature."})
