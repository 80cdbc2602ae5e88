"""The garbage collector of a long-running service (issue 13: latency under load).

CPython's cyclic collector stops the whole process while it runs, and a full (generation 2)
collection walks every tracked object: in a service that is the whole of FastAPI, pydantic, the
event schemas, Babel's locale data and the drivers, loaded once at start-up and never freed. Measured
under sign-up load (`bench/pipeline_bench.py`, 16 clients, ~60 s): registration ran 8 full collections
of up to 218 ms each (1.3 s in all), notifications up to 505 ms; every request in flight waited.

`settle()` runs once the service has started: one full collection, then `gc.freeze()` moves every
object that survived it to a permanent generation the collector never walks again, so a full
collection only looks at what was made since. The young generation's threshold is raised from 700
to `YOUNG_THRESHOLD` allocations: most request and event objects are freed by reference counting
before a collection sees them, so fewer, larger young collections do less work in all.
Objects are still collected: cycles made after start-up are found as before.
"""

from __future__ import annotations

import gc

#: Allocations (minus deallocations) of tracked objects between two young collections (CPython: 700).
YOUNG_THRESHOLD = 10_000


def settle() -> None:
    """Collect once, then keep what start-up made out of every later collection (see the docstring)."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
