"""The search port's contract: every SearchIndex adapter passes it (see ``summit.ports.search``).

    class TestSearchContract(SearchContract):
        backend = backend_fixture("search")   # the adapters of summit.testing.backends

Each test opens a fresh, empty index from the backend's URL (a subclass may provide the ``search``
fixture itself: a fresh adapter, closed afterwards). Relevance is asserted only where any sound
ranking agrees (a document with more of the words, with a rarer one, with the word in its title or
more often), against filler documents, so that no query word is common to most of the index.
The hostile-query tests feed a fixed list of nasty strings and a bounded random generator with a
fixed seed: every query gives a page or ``InvalidQuery``, exactly when the port's rules say so.
"""

from __future__ import annotations

import random

import pytest

from summit.ports.search import (
    MAX_QUERY_CHARS,
    MAX_TERMS,
    Document,
    Hit,
    InvalidQuery,
    SearchIndex,
    SearchPage,
    words,
)
from summit.testing.backends import Backend

SEED = 20_260_101  # the random queries are the same on every run
RANDOM_QUERIES = 300
FILLER = ["quiet harbour at dawn", "mountain trail in autumn", "old town market", "rainy afternoon tea",
          "fresh bread and cheese", "night train to the coast", "garden full of roses", "snow on the rooftops",
          "children playing football", "lighthouse keeper diary", "jazz in the park", "museum of modern art"]

HOSTILE = [
    # FTS5 and tsquery syntax
    '"', '""', '"unclosed', '"alice', "alice\"", "'", "''", "'alice'", "*", "**", "* *", "a*", "*a", "ali*", "al**",
    "-", "--", "-alice", "alice -bob", "^", "^alice", "+alice", ":", "::", "name:", "name:alice", "title:x", "body:",
    "{title body}:x", "{", "}", "NEAR", "NEAR(", "NEAR(a b", "NEAR(a b, 2)", "NEAR(alice, -1)", "a NEAR/2 b",
    "AND", "OR", "NOT", "and or not", "alice AND", "OR alice", "NOT NOT", "alice NOT bob", "(", ")", "(()", "())",
    "a OR (b", "((((((((((", "alice)", "\\", "\\\\", "\\x00", "&", "|", "!", "<->", "<1>", "<2>", "a & b | !c",
    "a:*", "a:* & b", "'a':*", ":*", "*:*", "alice:*A", "@@", "$$", "%", "_", "%_%", "[a-z]", "~", "`", ";", ",",
    # SQL
    "';--", "' OR 1=1 --", "'); DROP TABLE summit_search_docs; --", "\"; DROP TABLE summit_search_words; --",
    "1; SELECT pg_sleep(10)", "UNION SELECT", "/* comment */", "-- comment",
    # control characters, invisible and odd Unicode
    "\x00", "a\x00b", "alice\x00", "\x00" * 5, "\x01\x02\x1f\x7f", "\n\r\t\v\f", "ali\nce", "\u200b", "\u200balice",
    "\ufeff", "\u202e", "\u2028", "\ud800", "a\udfffb", "\udbff\udfff", "\U000e0001", "\ufffd", "\uffff",
    # emoji, other scripts, numbers
    "🎉", "🎉alice🎉", "👨‍👩‍👧", "🇫🇷", "ℌ𝔢𝔩𝔩𝔬", "ﷺ", "Ⅻ", "٣", "東京", "ｆｕｌｌｗｉｄｔｈ", "İ", "ß", "ǅ", "e\u0301",
    "https://example.com/?q=1&x=2", "user@example.com", "../../etc/passwd", "C:\\Windows", "1.2.3", "1e10", "-1",
    "0x1F", "NaN", "Infinity", "null", "{}", "[]", "<script>alert(1)</script>",
    # sizes
    "", " ", "x" * MAX_QUERY_CHARS, "x" * (MAX_QUERY_CHARS + 1), "a " * 100, "ab " * MAX_TERMS,
    " ".join(f"w{i}" for i in range(MAX_TERMS)), " ".join(f"w{i}" for i in range(MAX_TERMS + 1)),
    "x" * 10_240, "é" * 10_240, "\x00" * 10_240, "🎉" * 10_240, "a*" * 5_120,
]
# the pieces the random queries are made of
_PIECES = ['"', "'", "*", "-", "^", ":", "(", ")", "{", "}", "NEAR(", "NEAR", "AND", "OR", "NOT", "+", "&", "|", "!",
           "<->", ":*", "\\", "\x00", "\x01", "\x1b", "\x7f", "\n", "\t", " ", "  ", "\u200b", "\ud800", "\udc00",
           "🎉", "👨‍👩‍👧", "é", "e\u0301", "ß", "東京", "हिन्दी", "alice", "ali", "bob", "title", "body", "name", "a", "x" * 70]


def random_queries(count: int = RANDOM_QUERIES, seed: int = SEED) -> list[str]:
    """``count`` queries of hostile pieces and random characters, some too long, all from ``seed``."""
    rng = random.Random(seed)
    ranges = [(0x00, 0x20), (0x20, 0x7F), (0x80, 0x250), (0x300, 0x370), (0x4E00, 0x4E80), (0xD800, 0xE000), (0x1F300, 0x1F650)]
    out = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(0, 40)):
            if rng.random() < 0.5:
                parts.append(rng.choice(_PIECES))
            else:
                low, high = rng.choice(ranges)
                parts.append("".join(chr(rng.randrange(low, high)) for _ in range(rng.randint(1, 8))))
        out.append("".join(parts)[: rng.choice([MAX_QUERY_CHARS, MAX_QUERY_CHARS + 50, 10_240])])
    return out


def ids(page: SearchPage) -> list[tuple[str, str]]:
    return [(hit.kind, hit.doc_id) for hit in page.hits]


def assert_in_order(hits: list[Hit]) -> None:
    """Score descending, ties in (kind, id) order."""
    for before, after in zip(hits, hits[1:]):
        assert (-before.score, before.kind, before.doc_id) < (-after.score, after.kind, after.doc_id), (before, after)


async def fill(search: SearchIndex) -> None:
    await search.index_many(Document("post", f"filler{i}", {"caption": text}) for i, text in enumerate(FILLER))


class SearchContract:
    """Tests every SearchIndex adapter passes; subclasses set ``backend`` or provide ``search``."""

    @pytest.fixture
    def backend(self) -> Backend:
        raise NotImplementedError('a subclass sets backend = backend_fixture("search"), or provides `search`')

    @pytest.fixture
    async def search(self, backend: Backend):
        search = backend.open("search")
        yield search
        await search.close()

    # ---- round trip -----------------------------------------------------------------------------

    async def test_starts_empty(self, search: SearchIndex) -> None:
        assert await search.count() == 0
        assert await search.query("anything") == SearchPage([], None)

    async def test_index_then_query(self, search: SearchIndex) -> None:
        await search.index("user", "42", {"name": "alice Alice Liddell", "bio": "fell down a rabbit hole into wonderland"}, rank=3)
        await fill(search)
        for text in ("alice", "Liddell", "wonderland", "rabbit hole", "ALICE wonderland"):
            page = await search.query(text)
            assert ids(page) == [("user", "42")], text
            assert page.next_cursor is None and page.hits[0].score > 0
        assert await search.query("cheshire") == SearchPage([], None)
        assert (await search.count(), await search.count("user"), await search.count("post"), await search.count("tag")) == (13, 1, 12, 0)

    async def test_the_same_id_in_two_kinds_is_two_documents(self, search: SearchIndex) -> None:
        await search.index("user", "7", {"name": "seven"})
        await search.index("post", "7", {"caption": "seven"})
        assert sorted(ids(await search.query("seven"))) == [("post", "7"), ("user", "7")]
        assert await search.delete("post", "7")
        assert ids(await search.query("seven")) == [("user", "7")]

    # ---- words ----------------------------------------------------------------------------------

    async def test_words_match_by_their_beginning(self, search: SearchIndex) -> None:
        await search.index_many([
            Document("user", "1", {"name": "alice"}), Document("user", "2", {"name": "alicia"}),
            Document("user", "3", {"name": "malice"}), Document("user", "4", {"name": "alistair liddell"}),
        ])
        await fill(search)
        assert sorted(ids(await search.query("ali"))) == [("user", "1"), ("user", "2"), ("user", "4")]  # not malice
        assert sorted(ids(await search.query("alic"))) == [("user", "1"), ("user", "2")]
        assert ids(await search.query("alicex")) == []
        assert ids(await search.query("alis lid")) == [("user", "4")]  # each word a prefix: both match, first

    async def test_a_one_letter_word_matches_whole_words_only(self, search: SearchIndex) -> None:
        await search.index_many([Document("post", "1", {"caption": "a cat"}), Document("post", "2", {"caption": "alpaca"}),
                                 Document("post", "3", {"caption": "x marks the spot"})])
        await fill(search)
        assert ids(await search.query("a")) == [("post", "1")]
        assert ids(await search.query("x")) == [("post", "3")]

    async def test_case_and_accents_do_not_matter(self, search: SearchIndex) -> None:
        await search.index_many([
            Document("user", "1", {"name": "Émile Zola"}), Document("post", "2", {"caption": "Straße in ÅNGSTRÖM"}),
            Document("tag", "café", {"tag": "café"}), Document("user", "3", {"name": "İSTANBUL Ｗｉｄｅ"}),
        ])
        await fill(search)
        cases = {"emile": ("user", "1"), "ÉMILE": ("user", "1"), "émi": ("user", "1"), "zolá": ("user", "1"),
                 "strasse": ("post", "2"), "STRASSE": ("post", "2"), "straße": ("post", "2"), "angstrom": ("post", "2"),
                 "cafe": ("tag", "café"), "CAFÉ": ("tag", "café"), "istanbul": ("user", "3"), "wide": ("user", "3")}
        for text, found in cases.items():
            assert ids(await search.query(text)) == [found], text

    async def test_other_scripts(self, search: SearchIndex) -> None:
        await search.index_many([Document("post", "1", {"caption": "東京タワー at night"}),
                                 Document("post", "2", {"caption": "हिन्दी कविता"}), Document("post", "3", {"caption": "Москва зимой"})])
        await fill(search)
        assert ids(await search.query("東京")) == [("post", "1")]  # written without spaces: by its beginning
        assert ids(await search.query("हिन्दी")) == [("post", "2")]
        assert ids(await search.query("москва")) == [("post", "3")]
        assert ids(await search.query("МОСК")) == [("post", "3")]

    async def test_syntax_in_documents_and_queries_is_only_words(self, search: SearchIndex) -> None:
        caption = 'he said "NEAR" (and) OR not: title* -x ^y name:z {body} a&b|c <-> \'quoted\''
        await search.index("post", "1", {"caption": caption})
        await fill(search)
        for text in ('"near"', "NEAR(", "and", "OR", "NOT", "title*", "title:", "name:z", "-x", "^y", "{body}", "a&b",
                     "b|c", "'quoted'", '"he said"', "(and) OR not"):
            assert ("post", "1") in ids(await search.query(text)), text  # (a filler has "and" too)

    async def test_long_words_are_cut_the_same_way(self, search: SearchIndex) -> None:
        word = "pneumonoultramicroscopicsilicovolcanoconiosis" * 3
        await search.index("post", "1", {"caption": f"a {word} case"})
        assert ids(await search.query(word[:70])) == [("post", "1")]
        assert ids(await search.query(word)) == [("post", "1")]
        assert ids(await search.query(word[:30])) == [("post", "1")]

    async def test_documents_with_hostile_text_are_indexed_and_found(self, search: SearchIndex) -> None:
        texts = ["nul\x00inside", "bell\x07and\x1bescape", "lone\ud800surrogate", '"quote NEAR( * ^ : -', "emoji🎉party",
                 "long " + "filler " * 5000 + "needle", "\u202eright\u202cleft", "tab\tand\nnewline"]
        await search.index_many(Document("post", str(i), {"caption": text}) for i, text in enumerate(texts))
        for text, found in (("inside", "0"), ("escape", "1"), ("surrogate", "2"), ("quote", "3"), ("party", "4"),
                            ("right", "6"), ("newline", "7")):
            assert ids(await search.query(text)) == [("post", found)], text
        assert await search.count() == len(texts)  # "needle" is past the words a document keeps: not an error

    # ---- relevance and order ----------------------------------------------------------------------

    async def test_more_of_the_words_first(self, search: SearchIndex) -> None:
        await search.index_many([Document("post", "red-bike", {"caption": "red bike"}), Document("post", "red-car", {"caption": "red car"}),
                                 Document("post", "blue-car", {"caption": "blue car"})])
        await fill(search)
        page = await search.query("red car")
        assert ids(page)[0] == ("post", "red-car")
        assert sorted(ids(page)[1:]) == [("post", "blue-car"), ("post", "red-bike")]
        assert_in_order(page.hits)

    async def test_rarer_words_first(self, search: SearchIndex) -> None:
        await search.index_many(Document("post", f"red{i}", {"caption": f"red thing number {i}"}) for i in range(4))
        await search.index("post", "zebra", {"caption": "zebra thing number 9"})
        await fill(search)
        page = await search.query("red zebra")
        assert ids(page)[0] == ("post", "zebra") and len(page.hits) == 5
        assert_in_order(page.hits)

    async def test_a_word_more_often_first(self, search: SearchIndex) -> None:
        await search.index("post", "once", {"caption": "zebra plains savanna grass"})
        await search.index("post", "thrice", {"caption": "zebra zebra zebra plains"})
        await fill(search)
        assert ids(await search.query("zebra")) == [("post", "thrice"), ("post", "once")]

    async def test_a_word_in_the_title_weighs_more(self, search: SearchIndex) -> None:
        await search.index("user", "title", {"name": "zebra", "bio": "plain words here"})
        await search.index("user", "bio", {"name": "plain", "bio": "zebra words here"})
        await fill(search)
        assert ids(await search.query("zebra")) == [("user", "title"), ("user", "bio")]

    async def test_rank_raises_a_document(self, search: SearchIndex) -> None:
        for doc_id, rank in (("none", 0), ("many", 5000), ("some", 20)):
            await search.index("tag", doc_id, {"tag": "sunset"}, rank=rank)
        await fill(search)
        page = await search.query("sun")
        assert ids(page) == [("tag", "many"), ("tag", "some"), ("tag", "none")]
        assert page.hits[0].score > page.hits[1].score > page.hits[2].score

    async def test_ties_come_in_kind_then_id_order(self, search: SearchIndex) -> None:
        names = [("user", "b"), ("post", "z"), ("user", "a"), ("post", "é"), ("post", "B"), ("post", "10"), ("post", "9")]
        await search.index_many(Document(kind, doc_id, {"text": "same words"}) for kind, doc_id in names)
        await fill(search)
        page = await search.query("same words")
        assert ids(page) == sorted(names)  # code-point order: "10" < "9" < "B" < "z" < "é"
        assert len({hit.score for hit in page.hits}) == 1

    # ---- kinds and filters ------------------------------------------------------------------------

    async def test_kinds(self, search: SearchIndex) -> None:
        await search.index("user", "1", {"name": "sunny"})
        await search.index("post", "2", {"caption": "sunny day"})
        await search.index("tag", "sunny", {"tag": "sunny"}, rank=4)
        await fill(search)
        assert ids(await search.query("sun", kinds=["user"])) == [("user", "1")]
        assert sorted(ids(await search.query("sun", kinds=("user", "tag")))) == [("tag", "sunny"), ("user", "1")]
        assert sorted(ids(await search.query("sun", kinds={"post", "post"}))) == [("post", "2")]
        assert len((await search.query("sun", kinds=None)).hits) == 3
        assert ids(await search.query("sun", kinds=["comment"])) == []
        for bad in ([], "user", ["User"], ["no space"], [1], 5):
            with pytest.raises(InvalidQuery, match="kind"):
                await search.query("sun", kinds=bad)  # type: ignore[arg-type]

    async def test_filters(self, search: SearchIndex) -> None:
        await search.index("post", "1", {"caption": "beach walk"}, filters={"author": "10", "visibility": "public"})
        await search.index("post", "2", {"caption": "beach party"}, filters={"author": "11", "visibility": "public"})
        await search.index("post", "3", {"caption": "beach house"}, filters={"author": "10", "visibility": "friends"})
        await search.index("post", "4", {"caption": "beach towel"})
        await fill(search)
        assert sorted(ids(await search.query("beach", filters={"author": "10"}))) == [("post", "1"), ("post", "3")]
        assert ids(await search.query("beach", filters={"author": "10", "visibility": "public"})) == [("post", "1")]
        assert sorted(ids(await search.query("beach", filters={"visibility": "public"}))) == [("post", "1"), ("post", "2")]
        assert ids(await search.query("beach", filters={"author": "12"})) == []
        assert len((await search.query("beach", filters={})).hits) == 4
        for bad in ({"Author": "10"}, {"author": ""}, {"author": 10}, {"author": "a\x00"}, "author=10"):
            with pytest.raises(InvalidQuery, match="filter"):
                await search.query("beach", filters=bad)  # type: ignore[arg-type]

    # ---- changes ----------------------------------------------------------------------------------

    async def test_indexing_an_id_again_replaces_it(self, search: SearchIndex) -> None:
        await search.index("post", "1", {"caption": "original caption"}, rank=1, filters={"author": "5"})
        await search.index("post", "1", {"caption": "edited text"}, filters={"author": "6"})
        await fill(search)
        assert ids(await search.query("original")) == []
        assert ids(await search.query("edited")) == [("post", "1")]
        assert ids(await search.query("edited", filters={"author": "5"})) == []
        assert ids(await search.query("edited", filters={"author": "6"})) == [("post", "1")]
        assert await search.count("post") == 13

    async def test_delete_removes_at_once(self, search: SearchIndex) -> None:
        await search.index("post", "1", {"caption": "to be removed"})
        await search.index("post", "2", {"caption": "to be kept"})
        assert await search.delete("post", "1") is True
        assert ids(await search.query("removed")) == []
        assert ids(await search.query("to be")) == [("post", "2")]
        assert await search.delete("post", "1") is False
        assert await search.delete("user", "2") is False
        assert await search.count() == 1
        await search.index("post", "1", {"caption": "removed and back"})
        assert ids(await search.query("removed")) == [("post", "1")]

    async def test_clear(self, search: SearchIndex) -> None:
        await search.index("user", "1", {"name": "keep me"})
        await search.index("post", "1", {"caption": "keep me"})
        await search.index("post", "2", {"caption": "keep me too"})
        await search.clear("post")
        assert (await search.count(), await search.count("post")) == (1, 0)
        assert ids(await search.query("keep")) == [("user", "1")]
        await search.clear()
        assert await search.count() == 0
        assert ids(await search.query("keep")) == []
        await search.index("post", "3", {"caption": "keep after clear"})
        assert ids(await search.query("keep")) == [("post", "3")]

    async def test_index_many(self, search: SearchIndex) -> None:
        batch = [Document("post", str(i), {"caption": f"bulk item {i}"}, rank=i % 7) for i in range(1200)]
        batch.append(Document("post", "5", {"caption": "bulk replaced"}))  # the later one wins
        assert await search.index_many(batch) == 1200
        assert await search.index_many([]) == 0
        assert await search.count("post") == 1200
        assert ids(await search.query("replaced")) == [("post", "5")]
        assert ids(await search.query("1199")) == [("post", "1199")]

    async def test_bad_documents_are_refused(self, search: SearchIndex) -> None:
        bad = [
            (("User", "1", {"name": "x"}), {}), (("user", "", {"name": "x"}), {}), (("user", "a\nb", {"name": "x"}), {}),
            (("user", "x" * 201, {"name": "x"}), {}), (("user", 1, {"name": "x"}), {}), (("user", "1", {}), {}),
            (("user", "1", {"Name": "x"}), {}), (("user", "1", {f"f{i}": "x" for i in range(9)}), {}),
            (("user", "1", {"name": "x"}), {"rank": -1}), (("user", "1", {"name": "x"}), {"rank": float("nan")}),
            (("user", "1", {"name": "x"}), {"rank": True}), (("user", "1", {"name": "x"}), {"filters": {"a b": "1"}}),
            (("user", "1", {"name": "x"}), {"filters": {"author": ""}}),
        ]
        for args, options in bad:
            with pytest.raises(ValueError):
                await search.index(*args, **options)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="field 'name' is text"):
            await search.index("user", "1", {"name": None})  # type: ignore[dict-item]
        with pytest.raises(ValueError):
            await search.delete("User", "1")
        assert await search.count() == 0

    # ---- pages ------------------------------------------------------------------------------------

    async def test_cursors_page_through_every_hit_once(self, search: SearchIndex) -> None:
        rng = random.Random(SEED)
        docs = [Document(rng.choice(["post", "user"]), f"d{i}", {"text": "page " + " ".join(rng.choice(FILLER) for _ in range(rng.randint(0, 3)))},
                         rank=rng.choice([0, 0, 0, 1, 10])) for i in range(57)]
        await search.index_many(docs)
        await search.index_many(Document("tag", f"t{i}", {"tag": "unrelated"}) for i in range(20))
        whole = await search.query("page", limit=100)
        assert len(whole.hits) == 57 and whole.next_cursor is None
        assert_in_order(whole.hits)
        seen: list[Hit] = []
        sizes = []
        cursor = None
        while True:
            page = await search.query("page", cursor=cursor, limit=10)
            seen += page.hits
            sizes.append(len(page.hits))
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert sizes == [10, 10, 10, 10, 10, 7]
        assert seen == whole.hits  # no duplicate, no gap, the same order

    async def test_a_full_last_page_has_no_cursor(self, search: SearchIndex) -> None:
        await search.index_many(Document("post", f"{i:02}", {"caption": "exact"}) for i in range(20))
        first = await search.query("exact", limit=10)
        assert first.next_cursor is not None
        second = await search.query("exact", limit=10, cursor=first.next_cursor)
        assert len(second.hits) == 10 and second.next_cursor is None
        assert sorted(ids(first) + ids(second)) == [("post", f"{i:02}") for i in range(20)]
        assert (await search.query("exact", limit=5, cursor="")).next_cursor is not None  # "" is no cursor

    async def test_a_cursor_belongs_to_its_search(self, search: SearchIndex) -> None:
        await search.index_many(Document("post", str(i), {"caption": "cursor words"}, filters={"a": "1"}) for i in range(5))
        cursor = (await search.query("cursor", limit=2)).next_cursor
        assert cursor is not None
        assert len((await search.query("CURSOR", cursor=cursor, limit=2)).hits) == 2  # the same words
        for other in ({"text": "words"}, {"text": "cursor", "kinds": ["post"]}, {"text": "cursor", "filters": {"a": "1"}}):
            with pytest.raises(InvalidQuery, match="cursor"):
                await search.query(other.pop("text"), cursor=cursor, **other)  # type: ignore[arg-type]
        for bad in ("x", "!!!", "W10", cursor[:-2], cursor + "AA", "A" * 5000, "\x00", "eyJhIjoxfQ", 12):
            with pytest.raises(InvalidQuery, match="cursor"):
                await search.query("cursor", cursor=bad)  # type: ignore[arg-type]

    # ---- limits and hostile queries ---------------------------------------------------------------

    async def test_limits_say_what_to_fix(self, search: SearchIndex) -> None:
        await search.index("post", "1", {"caption": "alpha beta"})
        with pytest.raises(InvalidQuery, match=f"at most {MAX_QUERY_CHARS} characters"):
            await search.query("a" * (MAX_QUERY_CHARS + 1))
        with pytest.raises(InvalidQuery, match=f"at most {MAX_TERMS} different words"):
            await search.query(" ".join(f"w{i}" for i in range(MAX_TERMS + 1)))
        assert ids(await search.query("alpha " * 30)) == [("post", "1")]  # repeated words count once
        for limit in (0, 101, -1, 2.5, "10", True, None):
            with pytest.raises(InvalidQuery, match="limit"):
                await search.query("alpha", limit=limit)  # type: ignore[arg-type]
        for text in (None, 42, b"alpha", ["alpha"]):
            with pytest.raises(InvalidQuery, match="text"):
                await search.query(text)  # type: ignore[arg-type]
        assert issubclass(InvalidQuery, ValueError)

    async def test_a_query_without_words_finds_nothing(self, search: SearchIndex) -> None:
        await search.index("post", "1", {"caption": "something"})
        for text in ("", "   ", "***", '""', "🎉", "\x00", "(-:^)", "\u200b"):
            assert await search.query(text) == SearchPage([], None), repr(text)

    async def test_hostile_queries_give_a_page_or_invalid_query(self, search: SearchIndex) -> None:
        await self._answers_or_refuses(search, HOSTILE)

    async def test_random_queries_give_a_page_or_invalid_query(self, search: SearchIndex) -> None:
        await self._answers_or_refuses(search, random_queries())

    async def _answers_or_refuses(self, search: SearchIndex, queries: list[str]) -> None:
        await search.index_many([Document("user", "1", {"name": "alice", "bio": "title body name near and or not"}),
                                 Document("post", "2", {"caption": "東京 हिन्दी é ß emoji 🎉 party"})])
        await fill(search)
        for text in queries:
            refuse = len(text) > MAX_QUERY_CHARS or len(set(words(text))) > MAX_TERMS
            try:
                page = await search.query(text, limit=5)
            except InvalidQuery as error:
                assert refuse, f"{text!r:.120} was refused: {error}"
                assert str(error), text
                continue
            assert not refuse, f"{text!r:.120} should have been refused"
            assert isinstance(page, SearchPage) and len(page.hits) <= 5
            if page.next_cursor:
                await search.query(text, limit=5, cursor=page.next_cursor)
