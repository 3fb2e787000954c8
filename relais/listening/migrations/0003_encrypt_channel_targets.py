"""Alert channel URLs carry passwords and tokens: store them encrypted (Fernet, keyed from the
deployment's SECRET_KEY, as connected accounts' credentials are).

Reversible: going back decrypts the tokens into the clear column again. Run it, either way, with
the SECRET_KEY the rows were written under; a token that secret cannot read is left empty on the
way back (the channel must then be added again).
"""

from django.db import migrations, models


def encrypt_targets(apps, schema_editor):
    from relais.connectors.credentials import encrypt_credentials

    channels = apps.get_model("listening", "AlertChannel")
    for channel in channels.objects.all().only("pk", "target"):
        channel.target_token = encrypt_credentials({"url": channel.target})
        channel.save(update_fields=["target_token"])


def decrypt_targets(apps, schema_editor):
    from relais.connectors.credentials import UnreadableCredentialsError, decrypt_credentials

    channels = apps.get_model("listening", "AlertChannel")
    for channel in channels.objects.all().only("pk", "target_token"):
        try:
            channel.target = decrypt_credentials(channel.target_token).get("url", "")
        except UnreadableCredentialsError:
            channel.target = ""
        channel.save(update_fields=["target"])


class Migration(migrations.Migration):
    dependencies = [("listening", "0002_mention_search")]

    operations = [
        migrations.AddField(
            model_name="alertchannel",
            name="target_token",
            field=models.TextField(default="", editable=False),
            preserve_default=False,
        ),
        # A default on the clear column lets the reverse migration re-create it on filled tables.
        migrations.AlterField(
            model_name="alertchannel",
            name="target",
            field=models.CharField(default="", max_length=2000),
        ),
        migrations.RunPython(encrypt_targets, decrypt_targets),
        migrations.RemoveField(model_name="alertchannel", name="target"),
    ]
