"""The zh-Hans catalogue is complete and its compiled form is the one committed."""

import ast
import shutil
import subprocess
from pathlib import Path

from django.utils import translation

LOCALE = Path(__file__).resolve().parents[2] / "locale" / "zh_Hans" / "LC_MESSAGES"
# Django's own date-format key: left to Django's catalogue on purpose.
LEFT_TO_DJANGO = {"DATETIME_FORMAT"}


def entries() -> list[tuple[str, str]]:
    """(msgid, msgstr) of every entry of the .po, plural forms folded into msgstr[0]."""
    out, msgid, msgstr, field = [], None, "", None
    for line in [*(LOCALE / "django.po").read_text(encoding="utf-8").splitlines(), ""]:
        if line.startswith("#~"):
            continue
        if line.startswith("msgid "):
            if msgid is not None:
                out.append((msgid, msgstr))
            msgid, msgstr, field = ast.literal_eval(line[6:]), "", "msgid"
        elif line.startswith(("msgstr ", "msgstr[0] ")):
            msgstr, field = ast.literal_eval(line.split(" ", 1)[1]), "msgstr"
        elif line.startswith(("msgid_plural", "msgstr[")):
            field = None
        elif line.startswith('"') and field == "msgid":
            msgid += ast.literal_eval(line)
        elif line.startswith('"') and field == "msgstr":
            msgstr += ast.literal_eval(line)
    if msgid is not None:
        out.append((msgid, msgstr))
    return [(i, s) for i, s in out if i]


def test_every_message_is_translated():
    missing = [msgid for msgid, msgstr in entries() if not msgstr and msgid not in LEFT_TO_DJANGO]
    assert missing == []


def test_compiled_catalogue_matches_the_source(tmp_path):
    msgfmt = shutil.which("msgfmt")
    assert msgfmt, "gettext is needed: apt-get install -y gettext"
    compiled = tmp_path / "django.mo"
    subprocess.run([msgfmt, "--check", "-o", str(compiled), str(LOCALE / "django.po")], check=True)
    assert compiled.read_bytes() == (LOCALE / "django.mo").read_bytes()


def test_admin_labels_are_served_in_chinese():
    with translation.override("zh-hans"):
        assert translation.gettext("Submit for approval") == "提交审批"
        assert translation.gettext("Model name") == "模型名称"
