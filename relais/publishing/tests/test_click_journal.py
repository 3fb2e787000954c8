"""Clicks survive a web process killed before its batch was written, and bad journal lines."""

import os
import signal
import subprocess
import sys
import textwrap
from datetime import date

import pytest
from django.conf import settings

from relais.publishing import actions
from relais.publishing.links import ClickRecorder
from relais.publishing.models import LinkClick

pytestmark = pytest.mark.django_db(transaction=True)

# A web process that journals clicks and is killed before its writer's first batch.
KILLED_PROCESS = textwrap.dedent(
    """
    import sys, time
    from datetime import date
    from pathlib import Path
    import django
    django.setup()
    from relais.publishing.links import ClickRecorder
    from relais.publishing.models import LinkClick

    workspace_id, link_id, count, journal_dir = sys.argv[1:5]
    recorder = ClickRecorder(Path(journal_dir), interval=3600)
    for n in range(int(count)):
        recorder.add(
            LinkClick(
                workspace_id=int(workspace_id), link_id=int(link_id), day=date(2026, 11, 26),
                visitor=f"visitor-{n}", forwarder="camille" if n % 2 else "",
            )
        )
    print("journalled", flush=True)
    time.sleep(600)
    """
)


@pytest.fixture
def link(agent, workspace):
    return actions.do_create_link(agent, workspace.pk, "https://shop.example/pc")


def test_a_killed_process_s_clicks_are_replayed_once(link, tmp_path):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
    env["RELAIS_DATA_DIR"] = str(tmp_path / "data")  # nothing of the test database is needed
    arguments = [str(link.workspace_id), str(link.pk), "40", str(tmp_path)]
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_PROCESS, *arguments],
        stdout=subprocess.PIPE,
        text=True,
        cwd=settings.BASE_DIR,
        env=env,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "journalled"
        survivor = ClickRecorder(tmp_path)
        assert survivor.recover() == 0  # the process lives: its journal is its own
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()

    assert survivor.recover() == 40
    assert LinkClick.objects.filter(link=link).count() == 40
    assert LinkClick.objects.filter(link=link, forwarder="camille").count() == 20
    assert list(tmp_path.glob("*.jsonl")) == []
    assert survivor.recover() == 0


def test_a_damaged_line_is_skipped_and_a_deleted_link_does_not_block_the_rest(
    agent, workspace, link, tmp_path, caplog
):
    gone = actions.do_create_link(agent, workspace.pk, "https://shop.example/old")
    recorder = ClickRecorder(tmp_path, interval=3600)
    for target, visitor in ((link, "a"), (gone, "b"), (link, "c")):
        recorder.add(
            LinkClick(workspace=workspace, link=target, day=date(2026, 11, 26), visitor=visitor)
        )
    [journal] = tmp_path.glob("*.jsonl")
    with journal.open("ab") as cut_short:
        cut_short.write(b'[1, 2, "2026-11')  # the kill came in the middle of a write
    gone.delete()
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(journal.read_bytes())

    assert recorder.flush() == 3  # the deleted link's click is dropped, the others written
    assert sorted(LinkClick.objects.values_list("visitor", flat=True)) == ["a", "c"]
    assert not journal.exists()
    # The same clicks found again in a dead process's journal: replayed, counted once.
    assert ClickRecorder(tmp_path).recover() == 3
    assert LinkClick.objects.count() == 2
    assert "damaged click journal line" in caplog.text
