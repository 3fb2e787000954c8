from django.urls import path

from relais.publishing import public_views

urlpatterns = [
    path("<str:code>", public_views.follow_link, name="tracked_link"),
    path("<str:code>/offer/", public_views.offer_landing, name="offer_landing"),
]
