"""Words: the English stop words the pyramid ignores when it looks for what a text is about (key
phrases of a concept, the key terms of a question), and ``key_terms``."""

from __future__ import annotations

import re

STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had has
    have having he her here hers herself him himself his how i if in into is it its itself just me more
    most my myself no nor not now of off on once only or other our ours ourselves out over own same she
    should so some such than that the their theirs them themselves then there these they this those
    through to too under until up very was we were what when where which while who whom why will with
    would you your yours yourself yourselves one two three many much may might must shall us via per
    within without upon onto among amongst whose whether yet however thus therefore also etc e.g i.e""".split()
)
# Words that ask rather than say what is asked about ("tell me about…", "list the…").
_ASKING = frozenset("tell know give show find explain describe list please".split())
_WORD = re.compile(r"[^\W_](?:[\w'’.\-]*[^\W_])?")


def key_terms(text: str) -> list[str]:
    """The content words of ``text`` in order, each once: what a search for a question looks for when
    the question's phrasing gets in the way ("When does the Holm pilot start?" → Holm, pilot, start)."""
    terms: dict[str, str] = {}
    for word in _WORD.findall(text):
        lower = word.lower()
        if lower not in STOPWORDS and lower not in _ASKING and (len(word) > 1 or word.isdigit()):
            terms.setdefault(lower, word)
    return list(terms.values())
