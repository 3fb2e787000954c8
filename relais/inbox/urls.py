"""The care inbox's pages, included under /w/<slug>/."""

from django.urls import path

from relais.inbox import views

CONVERSATION = "conversations/<int:conversation_id>/"

urlpatterns = [
    path("inbox/", views.inbox, name="inbox"),
    path("inbox/rows/", views.inbox_rows, name="inbox_rows"),
    path("inbox/breaches/", views.sla_breach_notice, name="sla_breach_notice"),
    path(CONVERSATION, views.conversation, name="conversation"),
    path(CONVERSATION + "thread/", views.conversation_thread, name="conversation_thread"),
    path(CONVERSATION + "reply/", views.reply, name="reply"),
    path(CONVERSATION + "retry/", views.retry_reply, name="retry_reply"),
    path(CONVERSATION + "approve/", views.approve_reply, name="approve_reply"),
    path(CONVERSATION + "withdraw/", views.withdraw_reply, name="withdraw_reply"),
    path(CONVERSATION + "draft/", views.save_draft, name="save_draft"),
    path(CONVERSATION + "presence/", views.presence, name="presence"),
    path(CONVERSATION + "note/", views.add_note, name="add_note"),
    path(CONVERSATION + "status/", views.change_status, name="change_status"),
    path(CONVERSATION + "assign/", views.assign, name="assign"),
    path(CONVERSATION + "tags/", views.set_tags, name="set_tags"),
    path(CONVERSATION + "team/", views.set_team, name="set_team"),
    path("contacts/", views.contacts, name="contacts"),
    path("contacts/export.csv", views.contacts_csv, name="contacts_csv"),
    # A contact is reached through one of its conversations (every contact has one).
    path(CONVERSATION + "contact/", views.contact, name="contact"),
    path(CONVERSATION + "contact/update/", views.contact_update, name="contact_update"),
    path(CONVERSATION + "contact/note/", views.contact_note, name="contact_note"),
    path(CONVERSATION + "contact/merge/", views.contact_merge, name="contact_merge"),
    path("inbox/kpis/", views.care_kpis, name="care_kpis"),
    path("inbox/settings/", views.care_settings, name="care_settings"),
    path("inbox/settings/teams/", views.team_create, name="team_create"),
    path("inbox/settings/teams/members/", views.team_members, name="team_members"),
    path("inbox/settings/teams/delete/", views.team_delete, name="team_delete"),
    path("inbox/settings/rules/", views.rule_create, name="rule_create"),
    path("inbox/settings/rules/delete/", views.rule_delete, name="rule_delete"),
    path("inbox/settings/agents/", views.agent_update, name="agent_update"),
    path("inbox/settings/sla/", views.sla_set, name="sla_set"),
    path("inbox/settings/canned/", views.canned_create, name="canned_create"),
    path("inbox/settings/canned/delete/", views.canned_delete, name="canned_delete"),
    path("inbox/settings/approval/", views.approval_set, name="approval_set"),
    path("inbox/settings/webhooks/", views.webhook_create, name="webhook_create"),
    path("inbox/settings/webhooks/update/", views.webhook_update, name="webhook_update"),
    path("inbox/settings/webhooks/retry/", views.webhook_retry, name="webhook_retry"),
    path("inbox/settings/webhooks/delete/", views.webhook_delete, name="webhook_delete"),
    path("inbox/settings/webhooks/discard/", views.webhook_discard, name="webhook_discard"),
]
