"""Configuration errors that should stop `relais run` (it migrates first, which runs the
checks) rather than surface later as a failing sign-in."""

from typing import Any

from django.core.checks import Error, register
from django.core.exceptions import ImproperlyConfigured


@register()
def bluesky_client_keys_parse(app_configs: Any, **kwargs: Any) -> list[Error]:
    from relais.connectors.atproto_oauth import configured_client_keys

    try:
        configured_client_keys()
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="relais.connectors.E001")]
    return []
