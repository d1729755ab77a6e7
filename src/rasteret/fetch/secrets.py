"""Credentials in URLs: no query string is saved or printed unless it is known to be public.

A list of secret parameter names can never be complete (``token=``, ``auth=``,
``code=``, CloudFront ``Policy`` / ``Signature`` / ``Key-Pair-Id``, each vendor's own
names...), so rasteret lists the opposite: :data:`PUBLIC_QUERY_PARAMS`, the few
parameters that address an object version and are never credentials. Every other query
parameter, and user info (``user:password@``; not the ``container@`` of an
``abfs[s]://`` / ``wasb[s]://`` URL, which names the Azure container), is treated as a
secret:

* :func:`strip_credentials` (an href about to be persisted: collection tables, exports,
  ``{band}_error``) drops it;
* :func:`redact_url` / :func:`redact` (messages, errors, logs, ``explain()``) keep its
  name and replace its value by ``REDACTED``;
* a query holding a second ``?`` (a signer appended ``?sig=…`` to an href that already
  had a query) is split there too, so nothing after it passes for a public value.

:class:`RedactingFilter` runs :func:`redact` on every record of rasteret's loggers
(:func:`redact_loggers`). Signing happens at read time instead
(``rasteret.fetch.configure(signer=...)``), and errors leaving the fetch layer carry no
chained transport exception (:mod:`rasteret.fetch.retry`).
"""

from __future__ import annotations

import logging
import re
import urllib.parse

#: Query parameters kept in saved hrefs and shown in messages (compared lower case):
#: S3 ``versionId`` / Azure ``versionid``, GCS ``generation``, S3 ``x-id``, Azure
#: ``snapshot``. Everything else in a query string is treated as a credential.
PUBLIC_QUERY_PARAMS = frozenset({"versionid", "generation", "x-id", "snapshot"})

_REDACTED = "REDACTED"
_URL_IN_TEXT = re.compile(
    r"(?P<url>[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+)|(?P<query>\?[^\s'\"<>]*=[^\s'\"<>]*)"
)
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^/?#]*)@")
#: Schemes whose ``name@host`` names an Azure container, not a user (no password in it).
_CONTAINER_SCHEMES = ("abfs://", "abfss://", "wasb://", "wasbs://")
_SEPARATORS = re.compile(r"([&?])")


def is_public_param(name: str) -> bool:
    """Whether the query parameter ``name`` (as written, maybe percent-encoded) is public."""
    return urllib.parse.unquote_plus(name).strip().lower() in PUBLIC_QUERY_PARAMS


def _pieces(query: str) -> list[str]:
    """``name=value`` pieces of a query, split on ``&`` and on any further ``?``."""
    return [p for p in re.split(r"[&?]", query) if p]


def _public_piece(piece: str) -> bool:
    name, eq, _ = piece.partition("=")
    return bool(eq) and is_public_param(name)


def has_credentials(url: str) -> bool:
    """True when ``url`` carries anything :func:`strip_credentials` removes (a query
    parameter outside :data:`PUBLIC_QUERY_PARAMS`, or user info)."""
    return "://" in url and strip_credentials(url) != url


def strip_credentials(url: str) -> str:
    """``url`` without user info and without every query parameter that is not public.

    Public parameters keep their order and spelling; a query left empty is dropped, so
    a Planetary Computer href signed with a SAS token comes back exactly unsigned.
    Non-URLs (local paths) are returned unchanged.
    """
    if "://" not in url or ("?" not in url and "@" not in url):
        return url
    base, hash_, fragment = url.partition("#")
    base = _without_userinfo(base, "")
    path, question, query = base.partition("?")
    if question:
        kept = [p for p in _pieces(query) if _public_piece(p)]
        base = f"{path}?{'&'.join(kept)}" if kept else path
    return f"{base}{hash_}{fragment}"


def _without_userinfo(url: str, replacement: str) -> str:
    """``url`` with its user info replaced by ``replacement``, except the container of
    an ``abfs[s]://`` / ``wasb[s]://`` URL (``container@account.dfs.core.windows.net``)."""
    match = _USERINFO.match(url)
    if match is None:
        return url
    if url.lower().startswith(_CONTAINER_SCHEMES) and ":" not in match.group(2):
        return url
    return url[: match.end(1)] + replacement + url[match.end() :]


def _redact_query(query: str, bare: bool) -> str:
    """Every value in ``query`` that is not a public parameter's → ``REDACTED``;
    valueless pieces too when ``bare``."""
    out = []
    for piece in _SEPARATORS.split(query):
        if piece in ("", "&", "?") or _public_piece(piece):
            out.append(piece)
            continue
        name, eq, _ = piece.partition("=")
        if eq:
            out.append(f"{name}={_REDACTED}")
        else:
            out.append(_REDACTED if bare else piece)
    return "".join(out)


def redact_url(url: str) -> str:
    """``url`` with user info and the value of every non-public query parameter
    replaced by ``REDACTED`` (parameter names are kept, to say what was there)."""
    if "@" in url:
        url = _without_userinfo(url, f"{_REDACTED}@")
    if "?" not in url:
        return url
    base, _, rest = url.partition("?")
    return f"{base}?{_redact_query(rest, bare=True)}"


def redact(text: str) -> str:
    """``text`` with every URL in it passed through :func:`redact_url`, and the values of
    any other ``?name=value`` query in it redacted the same way."""
    if "?" not in text and "@" not in text:
        return text

    def one(match: re.Match[str]) -> str:
        if match.group("url"):
            return redact_url(match.group("url"))
        return "?" + _redact_query(match.group("query")[1:], bare=False)

    return _URL_IN_TEXT.sub(one, text)


class RedactingFilter(logging.Filter):
    """A logging filter that passes every record through :func:`redact` (message and
    arguments, formatted once) so no signed URL reaches a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


_FILTER = RedactingFilter()


def redact_loggers(*names: str) -> None:
    """Attach the redacting filter to the loggers ``names`` (once each). A logger's
    filters see only the records it creates itself, so each logger in use is named."""
    for name in names:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
