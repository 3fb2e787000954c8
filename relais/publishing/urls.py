from django.urls import URLPattern, URLResolver, path

from relais.publishing import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.index, name="publishing"),
    path("count/", views.count, name="publishing_count"),
    path("drafts/new/", views.create_draft, name="publishing_create_draft"),
    path("draft/", views.draft_page, name="publishing_draft"),
    path("draft/save/", views.save_draft, name="publishing_save_draft"),
    path("draft/step/", views.draft_step, name="publishing_draft_step"),
    path("draft/previews/", views.fetch_previews, name="publishing_fetch_previews"),
    path("draft/media/", views.attach_media, name="publishing_attach_media"),
    path("draft/media/remove/", views.remove_media, name="publishing_remove_media"),
    path("draft/media/file/", views.media_file, name="publishing_media_file"),
    path("calendar/", views.calendar, name="publishing_calendar"),
    path("calendar/move/", views.move_target, name="publishing_move_target"),
    path("target/retry/", views.retry_target, name="publishing_retry_target"),
    path("target/adapt/", views.adapt_target, name="publishing_adapt_target"),
    path("settings/approvers/", views.set_approvers, name="publishing_set_approvers"),
    path("settings/slots/", views.add_slot, name="publishing_add_slot"),
    path("settings/slots/remove/", views.remove_slot, name="publishing_remove_slot"),
    path("settings/simulation/", views.set_simulation, name="publishing_set_simulation"),
    path("offers/", views.offers, name="publishing_offers"),
    path("offers/new/", views.create_offer, name="publishing_create_offer"),
    path("campaign/", views.campaign, name="publishing_campaign"),
    path("campaign/live/", views.campaign_live, name="publishing_campaign_live"),
    path("campaign/publish/", views.publish_offer, name="publishing_publish_offer"),
    path("campaign/report.csv", views.campaign_csv, name="publishing_campaign_csv"),
]
