import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_asgi_application()

# Imported once Django is set up: tracked-link redirects are answered before the middleware.
from relais.publishing.asgi import with_link_redirects  # noqa: E402

application = with_link_redirects(django_application)
