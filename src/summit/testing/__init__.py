"""Contract suites, shipped with the package: one per port, run against every adapter.

A suite is a pytest test class whose tests use a fixture named after the port. An adapter's test
module subclasses the suite and provides that fixture as an async fixture yielding a fresh, empty
adapter (and closing it afterwards)::

    from summit.testing.queue import QueueContract

    class TestSQLiteQueue(QueueContract):
        @pytest.fixture
        async def queue(self, tmp_path):
            q = SQLiteQueue.from_url(f"sqlite:///{tmp_path}/queue.db?max_receives=3")
            yield q
            await q.close()

The suites need pytest and pytest-asyncio (in auto mode), the ``test`` extra; importing
``summit.testing`` itself imports neither.
"""
