from django.urls import path

from relais.publishing import public_views

urlpatterns = [
    path("<str:code>", public_views.follow_link, name="tracked_link"),
    path("media/<str:token>", public_views.shared_image, name="shared_media"),
    path("<str:code>/offer/", public_views.offer_landing, name="offer_landing"),
]
