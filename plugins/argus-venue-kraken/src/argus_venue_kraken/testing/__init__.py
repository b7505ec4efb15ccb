"""Local servers that speak Kraken's protocols, plus an independent book reference.

Used by this plugin's tests, the benchmark and anyone who wants to point the
venue at 127.0.0.1 (``rest_url = "http://127.0.0.1:PORT"``,
``ws_url = "ws://127.0.0.1:PORT"``):

* :class:`LocalKrakenRest`: a real HTTP server (stdlib ``ThreadingHTTPServer``)
  serving recorded public payloads and a small private API that verifies
  ``API-Sign`` and nonces like Kraken does, with scripted faults
  (``inject``): Kraken error arrays, HTTP 5xx, non-JSON bodies.  With a book
  set (``set_book``) it is a small matching engine: a marketable AddOrder
  walks that book at taker fees and every order event is published in the
  shape of the authenticated WS v2 ``executions`` channel (``pending_new``,
  ``new``, ``trade``, ``filled``) to subscribed :class:`LocalKrakenWs` servers.
* :class:`LocalKrakenWs`: a ``websockets`` server playing one script per
  connection (frames, malformed text, waits for subscriptions or conditions,
  disconnects), acknowledging every subscribe/unsubscribe per symbol as Kraken
  does; :class:`ForwardExecutions` makes it the private ``executions`` feed of
  a :class:`LocalKrakenRest` (token checked, snapshot of open orders and the
  last 50 trades, then live updates).
* :class:`ReferenceBook` / :func:`random_book_messages`: a deliberately plain
  book (``Decimal`` dicts rebuilt and re-sorted, text formatted per level on
  every checksum, following the guide's steps literally) and a seeded random
  walk of realistic v2 book messages whose checksums it computes.
"""


from argus_venue_kraken.testing.book import (
    ReferenceBook,
    book_frame,
    random_book_messages,
    recentre_book,
)
from argus_venue_kraken.testing.rest import LocalKrakenRest, RecordedRequest
from argus_venue_kraken.testing.ws import (
    AwaitSubscribe,
    Call,
    Disconnect,
    ForwardExecutions,
    LocalKrakenWs,
    Send,
    Silence,
    Step,
    Until,
)

__all__ = [
    "AwaitSubscribe",
    "Call",
    "Disconnect",
    "ForwardExecutions",
    "LocalKrakenRest",
    "LocalKrakenWs",
    "RecordedRequest",
    "ReferenceBook",
    "Send",
    "Silence",
    "Step",
    "Until",
    "book_frame",
    "random_book_messages",
    "recentre_book",
]
