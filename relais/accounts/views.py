from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from relais.accounts.actions import do_set_language
from relais.accounts.models import User

LANGUAGE_COOKIE_AGE = 365 * 24 * 3600


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        response = super().form_valid(form)
        # The interface follows the language the user chose last time.
        user = form.get_user()
        if isinstance(user, User) and user.language:
            translation.activate(user.language)
            response.set_cookie("django_language", user.language, samesite="Lax")
        return response


@require_POST
def set_language(request: HttpRequest) -> HttpResponse:
    """Switch the interface language and remember it for the user."""
    language = request.POST.get("language", "")
    if language not in {"en", "fr"}:
        language = "en"
    if isinstance(request.user, User):
        do_set_language(request.user, language)
    next_url = request.POST.get("next", "/")
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = "/"
    response = redirect(next_url)
    response.set_cookie("django_language", language, samesite="Lax", max_age=LANGUAGE_COOKIE_AGE)
    return response
