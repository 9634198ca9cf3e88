"""Messages Django's admin shows that its own zh-Hans catalogue has not translated yet.

Not imported by anything: `makemessages` reads this file so that these msgids land in Gambit's
catalogue (locale/), whose translations take precedence over Django's. Drop an entry once
Django's catalogue carries it.
"""

from django.utils.translation import gettext_noop

# The curly apostrophes are Django's own msgids, character for character.
# ruff: noqa: RUF001

DJANGO_ADMIN_GAPS = (
    gettext_noop("Model name"),
    gettext_noop("Add link"),
    gettext_noop("Change or view list link"),
    gettext_noop("After you’ve created a user, you’ll be able to edit more user options."),
    gettext_noop("Error:"),
    gettext_noop("Forgotten your login credentials?"),
    gettext_noop("In case you’ve forgotten, you are:"),
)
