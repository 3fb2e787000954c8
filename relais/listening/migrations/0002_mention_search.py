"""Full-text search over the text of mentioned posts, in each database's own engine.

SQLite: an FTS5 table holding the text of every post that is a mention (filled by a trigger when a
mention is written, kept in step when the post's text changes), tokenized with accents folded and
English (Porter) stemming. PostgreSQL: a GIN index over the English and French stemmed vectors of
the post text, which the mention search uses as is.
"""

from django.db import migrations

SQLITE_FORWARD = [
    "CREATE VIRTUAL TABLE listening_post_fts USING fts5("
    "text, tokenize = 'porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER listening_mention_fts_insert AFTER INSERT ON listening_mention "
    "BEGIN "
    "INSERT INTO listening_post_fts (rowid, text) "
    "SELECT p.id, p.text FROM pipeline_post p WHERE p.id = NEW.post_id "
    "AND NOT EXISTS (SELECT 1 FROM listening_post_fts f WHERE f.rowid = NEW.post_id); "
    "END",
    "CREATE TRIGGER listening_post_fts_update AFTER UPDATE OF text ON pipeline_post "
    "BEGIN UPDATE listening_post_fts SET text = NEW.text WHERE rowid = NEW.id; END",
    "CREATE TRIGGER listening_post_fts_delete AFTER DELETE ON pipeline_post "
    "BEGIN DELETE FROM listening_post_fts WHERE rowid = OLD.id; END",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS listening_post_fts_delete",
    "DROP TRIGGER IF EXISTS listening_post_fts_update",
    "DROP TRIGGER IF EXISTS listening_mention_fts_insert",
    "DROP TABLE IF EXISTS listening_post_fts",
]
POSTGRES_FORWARD = [
    "CREATE INDEX IF NOT EXISTS listening_post_text_fts ON pipeline_post USING GIN "
    "((to_tsvector('english', text) || to_tsvector('french', text)))"
]
POSTGRES_BACKWARD = ["DROP INDEX IF EXISTS listening_post_text_fts"]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for statement in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("listening", "0001_initial"),
        ("pipeline", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(
            _run({"sqlite": SQLITE_FORWARD, "postgresql": POSTGRES_FORWARD}),
            _run({"sqlite": SQLITE_BACKWARD, "postgresql": POSTGRES_BACKWARD}),
        )
    ]
