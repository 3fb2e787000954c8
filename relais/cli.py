"""The ``relais`` command for operators: Django's management commands under one name.

``relais status --json``, ``relais sandbox replay ...``, ``relais import FILE.jsonl``,
``relais run``, ``relais nlp train|evaluate|enrich`` (the enrichment models, see docs/nlp.md)
and every standard command (``relais migrate``, ``relais createsuperuser``...).
"""

import os
import sys

ALIASES = {"import": "import_posts"}


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["nlp"]:
        # The models' own tools need no database or settings: they take their own arguments.
        from relais.nlp.cli import main as nlp_main

        sys.exit(nlp_main(args[1:]))
    if args and args[0] in ALIASES:
        args[0] = ALIASES[args[0]]
    execute_from_command_line(["relais", *args])


if __name__ == "__main__":
    main()
