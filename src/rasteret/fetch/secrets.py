"""Credentials in URLs: strip them before an index is saved, redact them in messages.

Signed URLs (S3 pre-signed ``X-Amz-*``, Azure SAS ``sv/se/sp/sig...``, GCS
``X-Goog-*``) carry secrets in their query string. Rasteret never writes them into a
collection (:func:`strip_credentials` runs at ingest) and never prints them
(:func:`redact` runs on every URL and transport message an error carries); signing
happens at read time instead (``rasteret.fetch.configure(signer=...)``).
"""

from __future__ import annotations

import re
import urllib.parse

# Query parameters that are credentials, or only make sense next to one (lower case).
_SECRET_PARAMS = frozenset(
    {
        # Azure shared access signatures (service, account and user delegation SAS)
        "sig",
        "se",
        "st",
        "sp",
        "sv",
        "sr",
        "ss",
        "srt",
        "spr",
        "sip",
        "si",
        "skoid",
        "sktid",
        "skt",
        "ske",
        "sks",
        "skv",
        "sdd",
        "saoid",
        "suoid",
        "scid",
        "ses",
        "rscc",
        "rscd",
        "rsce",
        "rscl",
        "rsct",
        # S3 pre-signed URLs (SigV4 and SigV2)
        "x-amz-algorithm",
        "x-amz-credential",
        "x-amz-date",
        "x-amz-expires",
        "x-amz-signedheaders",
        "x-amz-signature",
        "x-amz-security-token",
        "awsaccesskeyid",
        "signature",
        "expires",
        # GCS signed URLs
        "x-goog-algorithm",
        "x-goog-credential",
        "x-goog-date",
        "x-goog-expires",
        "x-goog-signedheaders",
        "x-goog-signature",
        "googleaccessid",
        # generic
        "token",
        "access_token",
        "api_key",
        "apikey",
        "key",
        "password",
    }
)
# Parameters whose presence alone says "this URL is signed".
_SIGNATURE_PARAMS = frozenset({"sig", "x-amz-signature", "x-goog-signature", "signature"})
_REDACTED = "REDACTED"
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def _is_secret(name: str) -> bool:
    return name.lower() in _SECRET_PARAMS


def has_credentials(url: str) -> bool:
    """True when ``url``'s query string carries a signature or token."""
    query = urllib.parse.urlsplit(url).query
    if not query:
        return False
    names = {k.lower() for k, _ in urllib.parse.parse_qsl(query, keep_blank_values=True)}
    return bool(names & _SIGNATURE_PARAMS) or any(_is_secret(n) for n in names)


def strip_credentials(url: str) -> str:
    """``url`` without the query parameters that are (or belong to) credentials.

    Other parameters are kept in their order; a query left empty is dropped, so a
    Planetary Computer href signed with a SAS token comes back exactly unsigned.
    Non-URLs (local paths) and URLs without a query are returned unchanged.
    """
    if "?" not in url or "://" not in url:
        return url
    parts = urllib.parse.urlsplit(url)
    if not parts.query:
        return url
    pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    kept = [(k, v) for k, v in pairs if not _is_secret(k)]
    if len(kept) == len(pairs):
        return url
    query = urllib.parse.urlencode(kept, safe="/:,")
    return urllib.parse.urlunsplit(parts._replace(query=query))


def redact_url(url: str) -> str:
    """``url`` with the values of credential parameters replaced by ``REDACTED``."""
    if "?" not in url:
        return url
    base, _, rest = url.partition("?")
    query, hash_, fragment = rest.partition("#")
    pieces = []
    for piece in query.split("&"):
        name, eq, _value = piece.partition("=")
        if eq and _is_secret(urllib.parse.unquote_plus(name)):
            piece = f"{name}={_REDACTED}"
        pieces.append(piece)
    return f"{base}?{'&'.join(pieces)}{hash_}{fragment}"


def redact(text: str) -> str:
    """``text`` with every URL in it passed through :func:`redact_url`."""
    if "?" not in text:
        return text
    return _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)
