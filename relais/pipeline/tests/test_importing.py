import json

import pytest
from django.core.management import call_command

from relais.inbox.models import Conversation
from relais.pipeline.importing import import_lines
from relais.pipeline.models import Post

pytestmark = pytest.mark.django_db

GOOD = {
    "network": "sandbox",
    "remote_id": "a1",
    "author": {"handle": "camille", "name": "Camille", "followers": 12},
    "text": "@free toujours pas de réseau",
    "created_at": "2024-08-19T10:00:00Z",
}


def lines(*rows):
    return [row if isinstance(row, str) else json.dumps(row) for row in rows]


def test_invalid_lines_are_reported_with_their_number_and_the_others_imported(
    workspace, brand_account
):
    report = import_lines(
        workspace.pk,
        lines(
            GOOD,
            "{not json",
            {**GOOD, "remote_id": "a2", "created_at": "2024-08-19 10:00"},
            {**GOOD, "remote_id": "a3", "network": "myspace"},
            {**GOOD, "remote_id": "a4", "kind": "story"},
            {**GOOD, "remote_id": "a5", "author": "camille"},
            [1, 2],
            {**GOOD, "remote_id": "a6", "in_reply_to": "a1", "kind": "reply"},
        ),
    )
    reasons = dict(report.invalid)
    assert sorted(reasons) == [2, 3, 4, 5, 6, 7]
    assert "not valid JSON" in reasons[2]
    assert "time zone" in reasons[3]
    assert "unknown network" in reasons[4]
    assert "unknown kind" in reasons[5]
    assert "'author'" in reasons[6]
    assert (report.imported, report.created) == (2, 2)
    assert Conversation.objects.get().message_count == 2


def test_importing_twice_stores_nothing_twice(workspace, tmp_path, capsys):
    path = tmp_path / "posts.jsonl"
    path.write_text("\n".join(lines(GOOD, {**GOOD, "remote_id": "b2"})) + "\n", encoding="utf-8")
    call_command("import_posts", str(path), workspace=workspace.slug)
    call_command("import_posts", str(path), workspace=workspace.slug)
    out = capsys.readouterr().out
    assert "2 imported (0 new, 2 already there), 0 invalid" in out
    assert Post.objects.in_workspace(workspace.pk).count() == 2
