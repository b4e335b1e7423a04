"""The search port: full-text search over the app's documents, by words and word prefixes.

    await search.index("user", "42", {"name": "alice Alice Liddell", "bio": "curious"}, rank=12)
    page = await search.query("ali", kinds=["user"], limit=20)     # finds "alice"
    [(hit.kind, hit.doc_id) for hit in page.hits], page.next_cursor

A **document** is a *kind* (``user``, ``post`` ...), an id unique within its kind, and named text
fields. The first field is its title: a word there weighs twice as much as in the other fields.
``rank`` (>= 0, say a follower or use count) is a popularity prior that raises a document's score
gently (``boost``: ``1 + ln(1 + rank) / 10``), and ``filters`` are exact labels a query may require
(``{"author": "42"}``). Indexing an id that exists replaces it; ``delete`` removes it at once.

**Words.** The port cuts text into words itself, the same way for every adapter and for documents
and queries alike: case folded, accents of Latin, Greek and Cyrillic letters dropped (``Émile`` is
``emile``, ``Straße`` is ``strasse``), letters, digits and combining marks kept, everything else
(punctuation, symbols, emoji, control characters) a separator; a word is cut at 64 characters and
a document keeps its first 2048 words. Scripts written without spaces (Chinese, Japanese) become
long words that match by their beginning only.

**Queries are user text, never engine syntax.** A query is at most ``MAX_QUERY_CHARS`` characters
and ``MAX_TERMS`` distinct words, or ``InvalidQuery`` says what to shorten; quotes, ``*``, ``NEAR``,
``AND``/``OR``/``NOT``, ``name:``, parentheses are separators or plain words, so any text gives a
page or ``InvalidQuery``, never an engine's error. A query without a word gives an empty page.
Each word of two characters or more matches as a prefix (``ali`` finds ``alice``); a one-letter
word matches whole words only. A document matches if it has any of the words; the more of them, the
rarer they are and the more often they occur (in a shorter document), the higher its score.

**Order and paging.** Hits come by score, highest first, ties in (kind, id) order (code points),
so the order is total and stable. ``next_cursor`` is opaque, belongs to the query it came from
(same words, kinds and filters) and continues after the last hit of its page: no duplicate and no
gap while the index does not change; the last page has none. Scores are on each adapter's own
scale: compare them within one result list only.

Errors: ``InvalidQuery`` (a ``ValueError``: the caller's text or arguments; the message says what
to fix), ``SearchUnavailable`` (the engine does not answer now; retry), ``SearchError`` (their
base, and whatever else an engine reports). Bad documents are programming errors: ``TypeError`` or
``ValueError``.
"""

from __future__ import annotations

import abc
import base64
import binascii
import hashlib
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import orjson

from summit import telemetry

MAX_QUERY_CHARS = 200  # characters of a query's text
MAX_TERMS = 8  # distinct words of a query
MIN_PREFIX_CHARS = 2  # a shorter query word matches whole words only
MAX_WORD_CHARS = 64  # longer words (in documents and queries) are cut to this
MAX_DOC_WORDS = 2048  # words of a document that are indexed, all fields together
MAX_FIELDS = 8
MAX_FILTERS = 8
MAX_ID_CHARS = 200  # a document id, a filter's value
MAX_LIMIT = 100  # hits per page
DEFAULT_LIMIT = 20
RANK_WEIGHT = 0.1  # boost = 1 + RANK_WEIGHT * ln(1 + rank)
TITLE_WEIGHT = 2.0  # a word of the first field counts this many times a word of the others
_MAX_CURSOR_CHARS = 1024

_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")  # a kind, a field's or a filter's name
_ASCII_WORD = re.compile(r"[a-z0-9]+")
_LATIN_MARKS = re.compile(r"[\u0300-\u036f]+")  # the combining diacritics of Latin, Greek, Cyrillic


class SearchError(Exception):
    """Base of the search port's errors; adapters wrap their engine's errors in it."""


class InvalidQuery(SearchError, ValueError):
    """The query (its text, kinds, filters, cursor or limit) cannot be run as given; the message
    says what to change. Web apps answer 400 or 422 with it."""


class SearchUnavailable(SearchError):
    """The search engine cannot be reached now, or did not answer in time; retry shortly (503)."""


@dataclass(frozen=True)
class Document:
    """What ``index_many`` takes: the arguments of one ``index`` call."""

    kind: str
    doc_id: str
    fields: Mapping[str, str]
    rank: float = 0.0
    filters: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Hit:
    kind: str
    doc_id: str
    score: float  # higher is better; on the adapter's own scale


@dataclass(frozen=True)
class SearchPage:
    hits: list[Hit]
    next_cursor: str | None = None  # None on the last page


# ---- what the port hands its adapters (already checked and cut into words) ---------------------

@dataclass(frozen=True)
class Prepared:
    """A document as an adapter stores it."""

    kind: str
    doc_id: str
    title: list[str]  # the words of the first field
    body: list[str]  # the words of the other fields
    boost: float  # multiplies the text relevance
    filters: dict[str, str]


@dataclass(frozen=True)
class Term:
    word: str
    prefix: bool  # matches words that start with it (else only the word itself)


@dataclass(frozen=True)
class After:
    """Where a page starts: after this hit, in the order score desc, kind, doc_id."""

    score: float
    kind: str
    doc_id: str


@dataclass(frozen=True)
class QueryPlan:
    terms: tuple[Term, ...]  # 1 to MAX_TERMS, distinct
    kinds: tuple[str, ...] | None  # None: every kind
    filters: dict[str, str] = field(default_factory=dict)
    after: After | None = None
    limit: int = DEFAULT_LIMIT  # the adapter returns up to limit + 1 hits (the extra one: there is more)


# ---- words ----------------------------------------------------------------------------------

def words(text: str) -> list[str]:
    """The words of ``text``, as the index keeps them (see the module's docstring)."""
    if text.isascii():
        found = _ASCII_WORD.findall(text.lower())
    else:
        folded = unicodedata.normalize("NFC", _LATIN_MARKS.sub("", unicodedata.normalize("NFKD", text.casefold())))
        found, start = [], None
        for i, ch in enumerate(folded):
            if unicodedata.category(ch)[0] in "LNM":
                if start is None:
                    start = i
            elif start is not None:
                found.append(folded[start:i])
                start = None
        if start is not None:
            found.append(folded[start:])
    return [word[:MAX_WORD_CHARS] for word in found]


def boost(rank: float) -> float:
    return 1.0 + RANK_WEIGHT * math.log1p(rank)


# ---- checks -----------------------------------------------------------------------------------

def check_name(value: object, what: str, error: type[Exception] = ValueError) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise error(f"{what} is 1-32 lower-case letters, digits or '_', starting with a letter, not {value!r}")
    return value


def _check_label(value: object, what: str, error: type[Exception]) -> str:
    """A document id or a filter's value: 1-200 characters of text, no control character."""
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_ID_CHARS:
        raise error(f"{what} is text of 1 to {MAX_ID_CHARS} characters, not {value!r:.80}")
    if not (value.isascii() and value.isprintable()) and any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value):
        raise error(f"{what} must not contain control characters or lone surrogates: {value!r:.80}")
    return value


def _check_filters(filters: object, error: type[Exception]) -> dict[str, str]:
    if filters is None:
        return {}
    if not isinstance(filters, Mapping):
        raise error(f"filters are a mapping of name to value, not {type(filters).__name__}")
    if len(filters) > MAX_FILTERS:
        raise error(f"at most {MAX_FILTERS} filters, not {len(filters)}")
    return {check_name(k, "a filter's name", error): _check_label(v, f"filter {k!r}", error) for k, v in filters.items()}


def prepare(document: Document) -> Prepared:
    """Check a document and cut it into words, or raise TypeError/ValueError saying what is wrong."""
    kind = check_name(document.kind, "a kind")
    doc_id = _check_label(document.doc_id, "a document id", ValueError)
    fields = document.fields
    if not isinstance(fields, Mapping) or not 1 <= len(fields) <= MAX_FIELDS:
        raise ValueError(f"a document has 1 to {MAX_FIELDS} fields (name -> text), not {fields!r:.80}")
    texts = []
    for name, text in fields.items():
        check_name(name, "a field's name")
        if not isinstance(text, str):
            raise TypeError(f"field {name!r} is text, not {type(text).__name__}")
        texts.append(text)
    rank = document.rank
    if isinstance(rank, bool) or not isinstance(rank, (int, float)) or not math.isfinite(rank) or rank < 0:
        raise ValueError(f"rank is a finite number >= 0, not {rank!r}")
    title = words(texts[0])[:MAX_DOC_WORDS]
    body = [w for text in texts[1:] for w in words(text)][: MAX_DOC_WORDS - len(title)]
    return Prepared(kind, doc_id, title, body, boost(float(rank)), _check_filters(document.filters, ValueError))


def plan_query(text: object, *, kinds: Iterable[str] | None, filters: Mapping[str, str] | None,
               cursor: str | None, limit: int) -> QueryPlan | None:
    """The plan of a query, None if its text has no word, or InvalidQuery saying what to fix."""
    if not isinstance(text, str):
        raise InvalidQuery(f"a search is text, not {type(text).__name__}")
    if len(text) > MAX_QUERY_CHARS:
        raise InvalidQuery(f"a search is at most {MAX_QUERY_CHARS} characters (this one has {len(text)}): shorten it")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidQuery(f"limit is a whole number from 1 to {MAX_LIMIT}, not {limit!r}")
    if kinds is not None:
        if isinstance(kinds, str):
            raise InvalidQuery(f"kinds is a list of kinds, not the text {kinds!r:.80}")
        try:
            kinds = tuple(sorted({check_name(k, "a kind", InvalidQuery) for k in kinds}))
        except TypeError:
            raise InvalidQuery(f"kinds is a list of kinds, not {type(kinds).__name__}") from None
        if not kinds:
            raise InvalidQuery("kinds names at least one kind (or is None: every kind)")
    checked = _check_filters(filters, InvalidQuery)
    unique = list(dict.fromkeys(words(text)))
    if len(unique) > MAX_TERMS:
        raise InvalidQuery(f"a search has at most {MAX_TERMS} different words (this one has {len(unique)}): remove some")
    terms = tuple(Term(word, len(word) >= MIN_PREFIX_CHARS) for word in unique)
    after = _read_cursor(cursor, _fingerprint(terms, kinds, checked)) if cursor not in (None, "") else None
    if not terms:
        return None
    return QueryPlan(terms, kinds, checked, after, limit)


# ---- cursors ----------------------------------------------------------------------------------

def _fingerprint(terms: tuple[Term, ...], kinds: tuple[str, ...] | None, filters: dict[str, str]) -> str:
    what = orjson.dumps([[t.word for t in terms], kinds, sorted(filters.items())])
    return hashlib.blake2b(what, digest_size=6).hexdigest()


def _write_cursor(hit: Hit, fingerprint: str) -> str:
    raw = orjson.dumps([1, fingerprint, hit.score, hit.kind, hit.doc_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _read_cursor(cursor: object, fingerprint: str) -> After:
    bad = InvalidQuery("cursor is not the next_cursor of a page of this search: search again without it")
    if not isinstance(cursor, str) or len(cursor) > _MAX_CURSOR_CHARS:
        raise bad
    try:
        version, mark, score, kind, doc_id = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise bad from None
    if version != 1 or mark != fingerprint or not isinstance(score, (int, float)) or isinstance(score, bool) \
            or not math.isfinite(score) or not isinstance(kind, str) or not isinstance(doc_id, str):
        raise bad
    return After(float(score), kind, doc_id)


# ---- the port ---------------------------------------------------------------------------------

class SearchIndex(abc.ABC):
    """The port. Its public methods check their arguments and cut text into words once for every
    adapter; an adapter implements the ``_`` methods below."""

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        telemetry.instrument(cls, "search", {op: op for op in OPERATIONS})  # an adapter that overrides one

    @classmethod
    @abc.abstractmethod
    def from_url(cls, url: str) -> SearchIndex:
        """The adapter that ``url`` names; it connects on first use."""

    async def index(self, kind: str, doc_id: str, fields: Mapping[str, str], *, rank: float = 0.0,
                    filters: Mapping[str, str] | None = None) -> None:
        """Add the document, or replace the one of that kind and id. ``fields``: name -> text, the
        first the title; ``rank`` >= 0 a popularity; ``filters``: labels a query may require."""
        await self._index([prepare(Document(kind, doc_id, fields, rank, filters))])

    async def index_many(self, documents: Iterable[Document]) -> int:
        """``index`` each document, in one transaction (the last of two with the same kind and id
        wins); returns how many. For bulk loads: batches of a few hundred."""
        prepared = {(p.kind, p.doc_id): p for p in map(prepare, documents)}
        if prepared:
            await self._index(list(prepared.values()))
        return len(prepared)

    async def delete(self, kind: str, doc_id: str) -> bool:
        """Remove the document at once; True if it was there."""
        return await self._delete(check_name(kind, "a kind"), _check_label(doc_id, "a document id", ValueError))

    async def query(self, text: str, *, kinds: Iterable[str] | None = None, filters: Mapping[str, str] | None = None,
                    cursor: str | None = None, limit: int = DEFAULT_LIMIT) -> SearchPage:
        """The documents matching the words of ``text``, best first: of ``kinds`` (None: any), with
        every one of ``filters``; ``cursor``: a previous page's ``next_cursor``."""
        plan = plan_query(text, kinds=kinds, filters=filters, cursor=cursor, limit=limit)
        if plan is None:
            return SearchPage([])
        hits = await self._query(plan)
        if len(hits) <= limit:
            return SearchPage(hits)
        hits = hits[:limit]
        return SearchPage(hits, _write_cursor(hits[-1], _fingerprint(plan.terms, plan.kinds, plan.filters)))

    async def clear(self, kind: str | None = None) -> None:
        """Remove every document of ``kind`` (None: of every kind)."""
        await self._clear(None if kind is None else check_name(kind, "a kind"))

    async def count(self, kind: str | None = None) -> int:
        """How many documents of ``kind`` (None: of every kind) the index holds."""
        return await self._count(None if kind is None else check_name(kind, "a kind"))

    async def optimize(self) -> None:
        """Compact the index after a bulk load (``summit search reindex`` calls it); optional."""

    async def close(self) -> None:
        """Release connections; the index is not used after this."""

    # ---- what an adapter implements (arguments already checked) ---------------------------------

    @abc.abstractmethod
    async def _index(self, documents: Sequence[Prepared]) -> None:
        """Insert or replace ``documents`` (distinct kind and id) in one transaction."""

    @abc.abstractmethod
    async def _delete(self, kind: str, doc_id: str) -> bool: ...

    @abc.abstractmethod
    async def _query(self, plan: QueryPlan) -> list[Hit]:
        """Up to ``plan.limit + 1`` hits matching any term, after ``plan.after``, in the port's order."""

    @abc.abstractmethod
    async def _clear(self, kind: str | None) -> None: ...

    @abc.abstractmethod
    async def _count(self, kind: str | None) -> int: ...


OPERATIONS = ("index", "index_many", "delete", "query", "clear", "count")
telemetry.instrument(SearchIndex, "search", {op: op for op in OPERATIONS})  # counted once, for every adapter

