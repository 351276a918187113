"""Items rendered as the API serves them, kept for the next page that shows them.

A page of a popular query (a client paging, STAC Browser's first page) shows the same items
again and again: each is read from its file, its hrefs resolved and serialized once, and the
JSON bytes are kept, by the server's base URL and the item's file, in a bounded LRU that is
emptied whenever the index changes (a rebuilt or new item is read again).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Final

import orjson

from stacmask.catalog.index import CatalogIndex
from stacmask.serve.query import Hit, IndexedItem, JsonDict, load

#: Rendered items kept (a few kB each).
MAX_ITEMS: Final = 20_000


class RenderedItems:
    """The API JSON of items, as bytes, by base URL and item file."""

    def __init__(
        self,
        index: CatalogIndex,
        render: Callable[[str, IndexedItem], JsonDict],
        max_items: int = MAX_ITEMS,
    ) -> None:
        self.index = index
        self.render = render
        self.max_items = max_items
        self.lock = threading.Lock()
        self.entries: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self.version = -1

    def features(self, base: str, hits: Sequence[Hit]) -> list[bytes]:
        """The JSON of each hit's item served under `base` (an item whose file vanished since
        the index saw it is left out)."""
        with self.index.commit_lock:
            version = self.index.version
        with self.lock:
            if version != self.version:
                self.entries.clear()
                self.version = version
            found = {hit.relpath: self.entries.get((base, hit.relpath)) for hit in hits}
            for hit in hits:
                if found[hit.relpath] is not None:
                    self.entries.move_to_end((base, hit.relpath))
        missing = [hit for hit in hits if found[hit.relpath] is None]
        for entry in load(self.index, missing):
            found[entry.relpath] = orjson.dumps(self.render(base, entry))
        with self.lock:
            if version == self.version:
                for hit in missing:
                    rendered = found[hit.relpath]
                    if rendered is not None:
                        self.entries[(base, hit.relpath)] = rendered
                while len(self.entries) > self.max_items:
                    self.entries.popitem(last=False)
        return [rendered for hit in hits if (rendered := found[hit.relpath]) is not None]
