"""What every router of the REST API shares: the token that authenticated the request, and
actions' refusals turned into HTTP answers."""

from collections.abc import Callable
from typing import TypeVar

from django.http import HttpRequest
from ninja.errors import HttpError

from relais.accounts.models import ApiToken
from relais.core.errors import ConflictError, PermissionDeniedError, RelaisError

Result = TypeVar("Result")


def request_token(request: HttpRequest) -> ApiToken:
    """The token TokenAuth accepted; its workspace scopes everything the request sees."""
    return request.auth  # type: ignore[attr-defined]


def run_action(call: Callable[[], Result]) -> Result:
    """Run an action; its refusals become 403 (not allowed), 409 (changed meanwhile) or 400."""
    try:
        return call()
    except PermissionDeniedError as error:
        raise HttpError(403, str(error)) from error
    except ConflictError as error:
        raise HttpError(409, str(error)) from error
    except RelaisError as error:
        raise HttpError(400, str(error)) from error
