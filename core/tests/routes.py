"""Every `/api/` route of the URL conf with the methods it answers, read from the resolver, so that
tests that must cover every endpoint notice a new one."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.settings import api_settings

from core.apis import api_not_found

# Methods every view answers on its own (DRF's metadata, HEAD as GET); not endpoints of their own.
IMPLICIT = {"head", "options", "trace"}
SOME_UUID = "8f1c0a3e-2b7d-4c5e-9a61-0d4b3f2e1a90"


@dataclass(frozen=True)
class ApiRoute:
    name: str
    pattern: str
    methods: tuple[str, ...]
    view_class: type
    initkwargs: dict[str, Any]

    def path(self, **values: str) -> str:
        """A concrete path of the route; every path parameter gets `values[name]` or a fixed UUID."""
        groups = re.compile(self.pattern).groupindex
        return reverse(self.name, kwargs={group: values.get(group, SOME_UUID) for group in groups})

    @property
    def parser_classes(self) -> list[type]:
        classes = self.initkwargs.get("parser_classes") or getattr(self.view_class, "parser_classes", None)
        return list(classes if classes is not None else api_settings.DEFAULT_PARSER_CLASSES)


def _methods(callback: Any, view_class: type) -> tuple[str, ...]:
    actions = getattr(callback, "actions", None)
    if actions:
        # DRF adds `head` to a viewset's action map the first time it serves a GET: skip it.
        return tuple(sorted(method.upper() for method in actions if method not in IMPLICIT))
    names = getattr(view_class, "http_method_names", [])
    return tuple(sorted(m.upper() for m in names if m not in IMPLICIT and hasattr(view_class, m)))


def api_routes() -> list[ApiRoute]:
    """Named routes under /api/ (the catch-all for unknown paths is not an endpoint)."""
    found: list[ApiRoute] = []

    def walk(patterns: list[URLPattern | URLResolver], prefix: str) -> None:
        for entry in patterns:
            text = prefix + str(entry.pattern).lstrip("^").rstrip("$")
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, text)
                continue
            if not text.startswith("api/") or entry.callback is api_not_found:
                continue
            callback = entry.callback
            view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
            if entry.name is None or view_class is None:
                raise AssertionError(f"/{text}: every /api/ route needs a name and a class-based view")
            found.append(
                ApiRoute(
                    name=entry.name,
                    pattern=text,
                    methods=_methods(callback, view_class),
                    view_class=view_class,
                    initkwargs=dict(getattr(callback, "initkwargs", {})),
                )
            )

    walk(get_resolver().url_patterns, "")
    names = [route.name for route in found]
    duplicates = {name for name in names if names.count(name) > 1}
    if duplicates:
        raise AssertionError(f"route names used twice: {sorted(duplicates)}")
    return found
