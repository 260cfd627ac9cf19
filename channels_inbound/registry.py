"""Adapter registry: one adapter per channel kind, found in `channels_inbound/<provider>/adapter.py`."""

from __future__ import annotations

import importlib

from channels_inbound.base import Adapter

PROVIDERS = ("api", "email", "meta", "telegram", "twilio", "webchat")
_adapters: dict[str, Adapter] = {}


def register(adapter_class: type[Adapter]) -> type[Adapter]:
    instance = adapter_class()
    for kind in adapter_class.kinds:
        _adapters[kind] = instance
    return adapter_class


def autodiscover() -> None:
    for provider in PROVIDERS:
        importlib.import_module(f"channels_inbound.{provider}.adapter")


def adapter_for(kind: str) -> Adapter | None:
    return _adapters.get(kind)


def supported_kinds() -> list[str]:
    return sorted(_adapters)
