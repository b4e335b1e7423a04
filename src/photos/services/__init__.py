"""The application's use cases, written against the platform's ports only.

Every function takes the ``Context`` first; the API and the web UI are thin layers over these.
"""

from photos.services.common import Context, Page

__all__ = ["Context", "Page"]
