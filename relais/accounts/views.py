from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import translation
from django.views.decorators.http import require_POST

from relais.accounts.actions import do_set_language


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def form_valid(self, form):  # type: ignore[no-untyped-def]
        response = super().form_valid(form)
        # The interface follows the language the user chose last time.
        if language := self.request.user.language:  # type: ignore[union-attr]
            translation.activate(language)
            response.set_cookie("django_language", language, samesite="Lax")
        return response


@require_POST
def set_language(request: HttpRequest) -> HttpResponse:
    """Switch the interface language and remember it for the user."""
    language = request.POST.get("language", "")
    if language not in {"en", "fr"}:
        language = "en"
    if request.user.is_authenticated:
        do_set_language(request.user, language)  # type: ignore[arg-type]
    response = redirect(request.POST.get("next") or "/")
    if not response.url.startswith("/") or response.url.startswith("//"):
        response = redirect("/")
    response.set_cookie("django_language", language, samesite="Lax", max_age=365 * 24 * 3600)
    return response
