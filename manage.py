#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    # Production unless told otherwise: a forgotten variable must fail closed (no key, no DEBUG),
    # never serve with a published key; make run chooses config.settings.development.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
