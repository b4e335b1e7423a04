"""Contract suites and test helpers, shipped with the package.

A contract suite is a pytest test class, one per port (``cache``, ``objects``, ``queue``, ``mail``,
``search``, ``sql``), whose tests use a fixture named after the port. The suite opens that adapter
from the ``backend`` fixture, and ``backends.backend_fixture(port)`` makes that fixture,
parametrized over the port's table of adapter URLs (``backends.BACKENDS``), so one two-line
subclass runs the suite on every adapter of the port::

    from summit.testing.backends import backend_fixture
    from summit.testing.queue import QueueContract

    class TestQueue(QueueContract):
        backend = backend_fixture("queue")

A suite may also be given the adapter directly: a subclass that provides the port's fixture (an
async fixture yielding a fresh, empty adapter and closing it afterwards) needs no ``backend``.

Helpers: ``clock.ManualClock`` (time a test moves by hand), ``http.assert_error`` (the JSON error
shape), ``mail.mailed_code`` (a code the app mailed, read through the mail port), ``smtp`` (an
SMTP server in the test's process). They need pytest and pytest-asyncio (in auto mode), the
``test`` extra; importing ``summit.testing`` itself imports neither.
"""
