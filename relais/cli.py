"""The ``relais`` command for operators: Django's management commands under one name.

``relais status --json``, ``relais sandbox replay ...``, ``relais import FILE.jsonl``,
``relais run`` and every standard command (``relais migrate``, ``relais createsuperuser``...).
"""

import os
import sys

ALIASES = {"import": "import_posts"}


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ALIASES:
        args[0] = ALIASES[args[0]]
    execute_from_command_line(["relais", *args])


if __name__ == "__main__":
    main()
