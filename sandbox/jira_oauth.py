"""OAuth 1.0a as Jira Data Center's application links do it: RSA-SHA1 signatures in the Authorization header.

With `--jira-oauth` (`app.jira_oauth = True`) a Data Center site also accepts requests signed by the consumer
below with its access token, verified with oauthlib against the consumer's public key, as Jira does; a bad
or missing signature gets Jira's 401 with `WWW-Authenticate: OAuth ... oauth_problem="..."`. The private key
is a sandbox credential like the PAT: what a client is given (`Sandbox.env()`: JIRA_OAUTH_*).
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from urllib.parse import urlencode

CONSUMER_KEY = "flowlens-sandbox"
ACCESS_TOKEN = "sandbox-oauth-access-token"
ACCESS_TOKEN_SECRET = "sandbox-oauth-token-secret"  # Jira ignores it for RSA-SHA1; clients still send one
MAX_CLOCK_SKEW_S = 600
PUBLIC_KEY = """-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAtmF/Cefy9ym1h+Pop84W
FAEqnrmhlcAu7/aDPOCM6t0j+mAMM2ixFHZQQBGVscUBQi+4rya+c//uFes8AbDS
4cBNU8hBE2pHB1QrJkVFhnWnR7zzBLfNvIY5TXL2Bzx4iZPAscy8jm76Gn5XbN6N
KoS8D4DHH01fJRN9ZaDlnnXomiD+kKLk7FlWgT/xA1GDJoY1Kny2eqFUGGvZ2Aq2
i4eKYNpq3ndRfM1ZU3NnG5jQ3VoZe0xmIuNRBMYVEOgynC7ZPLmplZDRE5fD4IUb
qTOxJVEcMPD7nJPrcz7qKqxuWGrPXRAO0bwgmOzhp51aqwcHyR1fdQpEDQguyMt6
cQIDAQAB
-----END PUBLIC KEY-----
"""
PRIVATE_KEY = """-----BEGIN RSA PRIVATE KEY-----
MIIEpAIBAAKCAQEAtmF/Cefy9ym1h+Pop84WFAEqnrmhlcAu7/aDPOCM6t0j+mAM
M2ixFHZQQBGVscUBQi+4rya+c//uFes8AbDS4cBNU8hBE2pHB1QrJkVFhnWnR7zz
BLfNvIY5TXL2Bzx4iZPAscy8jm76Gn5XbN6NKoS8D4DHH01fJRN9ZaDlnnXomiD+
kKLk7FlWgT/xA1GDJoY1Kny2eqFUGGvZ2Aq2i4eKYNpq3ndRfM1ZU3NnG5jQ3VoZ
e0xmIuNRBMYVEOgynC7ZPLmplZDRE5fD4IUbqTOxJVEcMPD7nJPrcz7qKqxuWGrP
XRAO0bwgmOzhp51aqwcHyR1fdQpEDQguyMt6cQIDAQABAoIBAAIL+xCB5WSnt61U
PfawJehIkRFh9PHIy94Ojq9+t6YlIDO9ozVqfd5Ea6cka2Eo3FhBT9nLXgTQQPxG
/Q/py5wT++ouS6irnytyYt+VlG+rX1q7QKDzbSAqA3eejCtNnu6wVU/Jg+43SaBF
fbavkrcA8VldMR7lT+WLH/OliB4soLFkfl887az2ZpofLf5DPjvz2fraUjJpOGIz
WdKdbxi19YhpSc5OhYPOt/C485Xm//IwgXZAuYwj845d1uNccsuEIqAgUOl3+ScX
3y6R/QzFeVST5y9Updk3eY+QZAGUNLzIh5vF5LHLIo4WSgnDv45/8jrDNSFB8HNh
hsWq8Q8CgYEA9YlhN64OQmQF59KmZJtSGsMOKZCwzpRJQE0a13lvmKuym9fohiVA
Y0WsytU8TP6WJL51YVMMS3f7aJk8qHVg3lTIvp0S4Id99kDULcR1aiRINd2Qjo2r
vQ8GFGf5PxuNICE/68Vo9KS2rxSwWjzwd3TAS9Ytd2/wqUlk6uwa4g8CgYEAvici
XEwc7nK4LIrTSWydQVZjAtP+AnIet+7pR0w+SM9HiJkEnP1SJDl7fRxF9iPEmJA0
X3w+Fdd1U6/LHpJcoyCdOPzz3jAMuLClNYrcI2tUNoUanCzQO6Q9V0qi7K3wYYlk
LteyE9iAXLrDL4MdMy4YiTu0QEQTRFVPVCdGW38CgYEAw6yL8VegvYAAxNK3EA5H
zFQOAUnx3W+HQNsxvO5l5QFQAap7AAzH11U7cxmkSKfK99VgrgMFFU+055LXKFkC
raxbnqyG0rCnzYu0jBS4jbIEagj8nt6AMta6PaDunUBTo3tb+YUFM5HglH6kXAWc
jVZZuRYifcCTxhVbe2xVsDkCgYAJiX7wsCSXVQuluETGnvr4JvQKVUWdK8ocoY/z
soBBOJw23q3bjd0L0hI+gSeFI+AdYsYtr9aRU+AflWaTnvWkfONF03ILx88riDiR
CejmoeB0Z5KhGKJNC3zEHwsy4bp3ueNbchgNZMNzYy6c+G+DfKFgaK0ut/tbZwf2
iY2+0wKBgQCp1UXwTlzCsw0j2ZylzQeYh/3uLZXgWXFYbEtAqKY9KT+hZ+iucXbQ
JSfFec+KHCH8iIiVjF/f6nOmVb/8TVSMvMCGc34MhIn+dwiGoH12c+BXg573Zipp
oiMqgm26Cpu5GwW7fbDnfk1HgfehyYCx+UjR8gEfnnoJ4NpYkk1zGg==
-----END RSA PRIVATE KEY-----
"""


def env() -> dict[str, str]:
    """The variables a client is given for this site's OAuth."""
    return {"JIRA_OAUTH_CONSUMER_KEY": CONSUMER_KEY, "JIRA_OAUTH_ACCESS_TOKEN": ACCESS_TOKEN,
            "JIRA_OAUTH_ACCESS_TOKEN_SECRET": ACCESS_TOKEN_SECRET, "JIRA_OAUTH_PRIVATE_KEY": PRIVATE_KEY}


def problem(method: str, url: str, query: dict[str, list[str]], authorization: str) -> str | None:
    """None when `authorization` is a valid OAuth 1.0a RSA-SHA1 signature of this request by our consumer and
    token; else Jira's `oauth_problem` (signature_invalid, consumer_key_unknown, token_rejected, ...)."""
    from oauthlib.oauth1.rfc5849 import signature, utils

    try:
        oauth = {k: utils.unescape(v) for k, v in utils.parse_authorization_header(authorization)}
    except (ValueError, IndexError):
        return "parameter_absent"
    if "oauth_signature" not in oauth:
        return "parameter_absent"
    if oauth.get("oauth_consumer_key") != CONSUMER_KEY:
        return "consumer_key_unknown"
    if oauth.get("oauth_token") != ACCESS_TOKEN:
        return "token_rejected"
    if oauth.get("oauth_signature_method") != "RSA-SHA1":
        return "signature_method_rejected"
    try:
        if abs(time.time() - int(oauth.get("oauth_timestamp", "0"))) > MAX_CLOCK_SKEW_S:
            return "timestamp_refused"
    except ValueError:
        return "timestamp_refused"
    params = signature.collect_parameters(uri_query=urlencode(query, doseq=True),
                                          headers={"Authorization": authorization}, exclude_oauth_signature=True)
    request = SimpleNamespace(http_method=method, uri=url, params=params, signature=oauth.get("oauth_signature", ""))
    try:
        return None if signature.verify_rsa_sha1(request, PUBLIC_KEY) else "signature_invalid"
    except ValueError:  # not base64: binascii.Error is a ValueError
        return "signature_invalid"
