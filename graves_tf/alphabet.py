"""Character sets for handwriting synthesis (paper section 5.2).

The IAM-OnDB transcriptions contain 80 distinct characters; the paper used a
subset of 57, "with all the digits and most of the punctuation characters
replaced with a generic non-letter label". The paper does not list the kept
punctuation; :data:`PAPER` is our reading: the 52 letters, space, the three
most frequent punctuation marks of the transcriptions (``.`` ``,`` ``'``) and
the non-letter label, 57 symbols in all. Every other character (digits, ``!``,
``?``, ``-``, ...) maps to the non-letter label, which is id 0.

:data:`FULL` keeps every character of the IAM-OnDB transcriptions (82 of
them in the CSR lines of the archives) and sends anything else to id 0, 83
symbols in all.
"""

import string

NON_LETTER = "#"  # how the non-letter label is shown; it is id 0


class Alphabet:
    """A fixed character set with a label for everything outside it.

    Args:
        symbols: the characters, in id order. ``symbols[0]`` is the catch-all
            label for characters outside the set when ``unknown="map"``.
        unknown: ``"map"`` sends unknown characters to id 0; ``"error"`` refuses
            them with a message naming them.
    """

    def __init__(self, symbols, unknown="map"):
        if len(set(symbols)) != len(symbols):
            raise ValueError("alphabet symbols must be distinct")
        if unknown not in ("map", "error"):
            raise ValueError(f"unknown must be 'map' or 'error', got {unknown!r}")
        self.symbols = "".join(symbols)
        self.unknown = unknown
        self._ids = {c: i for i, c in enumerate(self.symbols)}

    def __len__(self):
        return len(self.symbols)

    def unknown_characters(self, text):
        """The distinct characters of ``text`` outside the alphabet, in order of appearance."""
        seen = []
        for c in text:
            if c not in self._ids and c not in seen:
                seen.append(c)
        return seen

    def encode(self, text):
        """``str -> list[int]``."""
        if self.unknown == "error":
            missing = self.unknown_characters(text)
            if missing:
                raise ValueError(
                    f"characters not in the alphabet: {''.join(missing)!r} "
                    f"(the alphabet is {self.symbols!r})"
                )
        return [self._ids.get(c, 0) for c in text]

    def decode(self, ids):
        return "".join(self.symbols[i] for i in ids)


PAPER = Alphabet(NON_LETTER + " .,'" + string.ascii_uppercase + string.ascii_lowercase)
assert len(PAPER) == 57

IAM_CHARACTERS = " !\"#%&'()*+,-./0123456789:;?" + string.ascii_uppercase + "[]" + string.ascii_lowercase
FULL = Alphabet("\ufffd" + IAM_CHARACTERS)  # id 0: a character outside the set
assert len(FULL) == 83

ALPHABETS = {"paper": PAPER, "full": FULL}
