"""English labels read as sentences: the catalog keeps lower-case msgids (they are also used
mid-sentence), and the admin capitalises them where they stand alone, as Django does for a
field's verbose name."""

import re
from collections.abc import Mapping

from django.utils.functional import keep_lazy_text

# A label may open with "+ " (an add button) or "(" before its first word.
FIRST_LETTER = re.compile(r"^([+(\s]*)([a-z])")


@keep_lazy_text
def sentence(text: str) -> str:
    """`text` with its first letter upper-case; text in another script is left as it is."""
    return FIRST_LETTER.sub(lambda match: match[1] + match[2].upper(), str(text), count=1)


# A processor's description names its settings in Markdown code spans (`fields`).
CODE_SPAN = re.compile(r"`([^`]+)`")


def without_code_spans(text: str, labels: Mapping[str, object]) -> str:
    """`text` with each `name` written as the setting's label in quotes (the name itself when
    it has no label): operators read words, not Markdown."""
    return CODE_SPAN.sub(lambda match: f"“{labels.get(match[1], match[1])}”", str(text))
