from django.contrib import admin
from django.urls import include, path

from relais.api import api

urlpatterns = [
    path("", include("relais.web.urls")),
    path("accounts/", include("relais.accounts.urls")),
    path("api/v1/", api.urls),
    path("admin/", admin.site.urls),
    path("l/", include("relais.publishing.public_urls")),
    path("hooks/", include("relais.connectors.public_urls")),
]
