"""Translations with Babel and gettext: one catalog per language per service, Jinja2's i18n extension.

A service that speaks to people keeps `locale/<lang>/LC_MESSAGES/messages.po` beside its templates
(message ids in English); `make install` compiles them to `.mo` (`pybabel compile --statistics`).
Dates, numbers and percentages are formatted by Babel (`babel.dates`, `babel.numbers`) in the
service's own code; this module only loads catalogs, builds one Jinja2 environment per language and
negotiates the language of a request.

Extract and update after changing a text (see the Makefile's `i18n-update`):
    pybabel extract -F babel.cfg -o messages.pot services/<service>
    pybabel update -i messages.pot -d services/<service>/locale
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from babel import Locale, negotiate_locale
from babel.support import Translations
from jinja2 import BaseLoader, Environment, StrictUndefined

LANGUAGES: tuple[str, ...] = ("nl", "de", "en")
DEFAULT_LANGUAGE = "nl"
DOMAIN = "messages"


class MissingCatalog(RuntimeError):
    """A compiled catalog (.mo) is missing: run `make install` (it runs `pybabel compile`)."""


def load_translations(locale_dir: Path, languages: Iterable[str] = LANGUAGES) -> dict[str, Translations]:
    """The compiled catalog of each language; MissingCatalog when one was not compiled."""
    out: dict[str, Translations] = {}
    for language in languages:
        mo = locale_dir / language / "LC_MESSAGES" / f"{DOMAIN}.mo"
        if not mo.exists():
            raise MissingCatalog(f"{mo} is missing: run `make install` (pybabel compile)")
        with mo.open("rb") as f:
            out[language] = Translations(f, domain=DOMAIN)
    return out


class Catalogs:
    """One Jinja2 environment per language, each with that language's gettext installed."""

    def __init__(self, loader: BaseLoader, locale_dir: Path, *, languages: Iterable[str] = LANGUAGES,
                 **env_options: Any) -> None:
        self.translations = load_translations(locale_dir, languages)
        self._envs: dict[str, Environment] = {}
        for language, translations in self.translations.items():
            env = Environment(loader=loader, extensions=["jinja2.ext.i18n"], undefined=StrictUndefined, **env_options)
            env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
            self._envs[language] = env

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self._envs)

    def env(self, language: str) -> Environment:
        return self._envs[language]

    def gettext(self, language: str, message: str) -> str:
        return self.translations[language].gettext(message)


def negotiate(requested: str | None, accept_language: str | None, supported: Iterable[str] = LANGUAGES,
              default: str = DEFAULT_LANGUAGE) -> str:
    """`requested` if supported, else the best supported language of an Accept-Language header
    (by quality, then order), else `default`."""
    supported = tuple(supported)
    if requested and requested.lower() in supported:
        return requested.lower()
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate((accept_language or "").split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag.strip() and quality > 0:
            ranked.append((-quality, position, tag.strip().replace("_", "-")))
    preferred = [tag for _, _, tag in sorted(ranked)]
    found = negotiate_locale(preferred, list(supported), sep="-") if preferred else None
    return str(Locale.parse(found, sep="-").language) if found else default
