"""Loads provider plugins through their ``cetgql`` entry points and keeps them by name.

Everything asks :func:`registry` for the providers. It answers with the installed plugins,
loaded once, unless a block of :func:`use_registry` put another registry in force: that is how
tests run against a provider object defined in the test, without installing a distribution::

    with manager.use_registry(manager.ProviderRegistry([FakeProvider()])):
        ...
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import cast

import pluggy

from cetgql.payments import hookspecs
from cetgql.payments.provider import PaymentProvider

logger = logging.getLogger("cetgql.payments")


@dataclass(frozen=True)
class LoadedPlugin:
    provider: str
    display_name: str
    distribution: str
    version: str


class ProviderRegistry:
    def __init__(
        self, providers: Iterable[PaymentProvider], loaded: Iterable[LoadedPlugin] = ()
    ) -> None:
        self._providers: dict[str, PaymentProvider] = {}
        for provider in providers:
            if not isinstance(provider, PaymentProvider):
                raise TypeError(f"{provider!r} does not implement PaymentProvider")
            if provider.name in self._providers:
                raise ValueError(f"two plugins provide the payment provider {provider.name!r}")
            self._providers[provider.name] = provider
        self.loaded = tuple(loaded)

    def get(self, name: str) -> PaymentProvider | None:
        return self._providers.get(name)

    def names(self) -> list[str]:
        return sorted(self._providers)

    def __iter__(self) -> Iterator[PaymentProvider]:
        return iter(self._providers[name] for name in self.names())


def plugin_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    manager.load_setuptools_entrypoints(hookspecs.PROJECT)
    return manager


def load(manager: pluggy.PluginManager | None = None) -> ProviderRegistry:
    """Collect providers from every installed plugin and report what was loaded."""
    manager = manager or plugin_manager()
    distributions = {id(plugin): dist for plugin, dist in manager.list_plugin_distinfo()}
    providers: list[PaymentProvider] = []
    loaded: list[LoadedPlugin] = []
    for implementation in manager.hook.cetgql_payment_providers.get_hookimpls():
        offered = cast(list[PaymentProvider], implementation.function())
        dist = distributions.get(id(implementation.plugin))
        for provider in offered:
            providers.append(provider)
            loaded.append(
                LoadedPlugin(
                    provider=provider.name,
                    display_name=provider.display_name,
                    distribution=dist.project_name if dist else implementation.plugin_name,
                    version=dist.version if dist else "",
                )
            )
    for item in loaded:
        logger.info(
            "payment provider %s (%s) from %s %s",
            item.provider,
            item.display_name,
            item.distribution,
            item.version,
        )
    return ProviderRegistry(providers, loaded)


@lru_cache(maxsize=1)
def installed() -> ProviderRegistry:
    """The providers installed in this process, loaded once."""
    return load()


_in_force: ProviderRegistry | None = None


def registry() -> ProviderRegistry:
    """The providers in force: the installed ones, or those of a :func:`use_registry` block."""
    return _in_force if _in_force is not None else installed()


@contextlib.contextmanager
def use_registry(replacement: ProviderRegistry) -> Iterator[ProviderRegistry]:
    """Put ``replacement`` in force for the whole process during the block (tests, tools);
    blocks nest, and the previous registry is back afterwards."""
    global _in_force
    previous, _in_force = _in_force, replacement
    try:
        yield replacement
    finally:
        _in_force = previous
