"""Forms of the working interface that are not tied to one action."""

from collections.abc import Sequence

from django import forms
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from relais.pipeline.models import Direction, Intent, Reason, Sentiment

Choices = Sequence[tuple[str, str | Promise]]

# The eight languages the language model is evaluated on, by code (see docs/nlp.md).
STREAM_LANGUAGES: Choices = [
    ("fr", _("French")),
    ("en", _("English")),
    ("es", _("Spanish")),
    ("de", _("German")),
    ("it", _("Italian")),
    ("pt", _("Portuguese")),
    ("ar", _("Arabic")),
    ("hi", _("Hindi")),
]


def _with_any(choices: Choices) -> list[tuple[str, str | Promise]]:
    return [("", _("any")), *choices]


class StreamFilterForm(forms.Form):
    lang = forms.ChoiceField(
        label=_("Language"), choices=_with_any(STREAM_LANGUAGES), required=False
    )
    sentiment = forms.ChoiceField(
        label=_("Sentiment"), choices=_with_any(Sentiment.choices), required=False
    )
    intent = forms.ChoiceField(label=_("Intent"), choices=_with_any(Intent.choices), required=False)
    reason = forms.ChoiceField(label=_("Reason"), choices=_with_any(Reason.choices), required=False)
    direction = forms.ChoiceField(
        label=_("Direction"), choices=_with_any(Direction.choices), required=False
    )
