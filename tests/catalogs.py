"""Translation catalogs as `pybabel extract -F babel.cfg` and `read_po` see them (for the tests)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[1]
#: Every service that speaks to people has a locale/ folder.
SERVICES_WITH_CATALOGS = tuple(sorted(p.parent.name for p in (ROOT / "services").glob("*/locale")))


@cache
def extracted(service: str) -> frozenset[str]:
    """The message ids the code and templates of `service` mark for translation."""
    with (ROOT / "babel.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f)
    found = extract_from_dir(ROOT / "services" / service, method_map, options_map)
    return frozenset(m if isinstance(m, str) else m[0] for _, _, m, _, _ in found)


def catalog(service: str, language: str) -> Catalog:
    with (ROOT / "services" / service / "locale" / language / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return read_po(f, locale=language)


def problems(service: str, language: str) -> list[str]:
    """Everything that makes a catalog incomplete or stale; empty when it is right."""
    po, ids = catalog(service, language), extracted(service)
    entries = {m.id: m for m in po if m.id}
    found = []
    if po.fuzzy:
        found.append("the catalog is fuzzy as a whole (no header?): pybabel compile would skip it")
    found += [f"missing (run `make i18n-update`, then translate): {i!r}" for i in sorted(ids - set(entries))]
    found += [f"no longer used (run `make i18n-update`): {i!r}" for i in sorted(set(entries) - ids)]
    found += [f"obsolete entry: {m.id!r}" for m in po.obsolete.values()]
    found += [f"untranslated: {m.id!r}" for m in entries.values() if not m.string]
    found += [f"fuzzy: {m.id!r}" for m in entries.values() if m.fuzzy]
    found += [f"placeholders differ: {m.id!r}: {errors}" for m, errors in po.check()]
    if language != "en":
        found += [f"copied from English: {m.id!r}" for m in entries.values() if m.string == m.id and " " in m.id]
    return found
