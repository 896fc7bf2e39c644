"""Text normalisation and language identification, shared by training and inference.

``normalize`` is applied to every text before it reaches a model, in training and in serving alike, so a change
here changes what models see: bump ``NORMALISER_VERSION`` and retrain. Model folders store the version they were
trained with and loading refuses a mismatch.

Steps, in order (each one undoes a way the same words reach us in different code points):
1. Remove zero-width and bidi control characters (used to dodge keyword filters; also ZWNJ in Urdu, which does
   not change the words), then Unicode NFKC (full-width forms, ligatures, Arabic presentation forms). Removing
   the controls first lets NFKC compose across them, so a second pass finds nothing left to compose.
2. Urdu letter forms: Arabic yeh/kaf/heh/teh-marbuta typed on Arabic keyboards become the Urdu letters; Arabic
   diacritics (harakat) are dropped; Urdu and Arabic-Indic digits become 0-9.
3. Homoglyphs: Cyrillic and Greek look-alikes inside Latin words become Latin letters (NFKC again where steps 2-3
   changed something, since a dropped mark or a folded letter can compose with a following mark).
4. Whitespace collapsed to single spaces; line breaks kept as one ``\\n``. This runs before step 5, so two spaces
   or a tab between spaced-out letters are folded like one space.
5. Evasion spellings, everywhere except URLs, e-mail addresses and @mentions (kept verbatim): letters spaced out
   with one separator (``k-a-f-i-r``, ``k a f i r``), leetspeak inside words (``j1had``, ``sh@heed``; runs of three
   or more digits and prices such as ``US$5k`` or ``Rs5k`` are numbers, not leet), letters (never digits) repeated
   more than twice (``plzzzz`` -> ``plzz``).
``normalize`` is idempotent: ``normalize(normalize(x)) == normalize(x)``.
Case is kept (the tokenisers lower-case as their models need).
"""

from __future__ import annotations

import re
import unicodedata

NORMALISER_VERSION = 2

_CONTROL_CHARS = (
    "\u00ad"  # soft hyphen
    "\u061c"  # Arabic letter mark
    "\u180e"
    "\u200b\u200c\u200d\u200e\u200f"
    "\u202a\u202b\u202c\u202d\u202e"
    "\u2060\u2061\u2062\u2063\u2064"
    "\u2066\u2067\u2068\u2069"
    "\ufeff"
)
_DROP_CONTROLS = {ord(c): None for c in _CONTROL_CHARS}

_URDU_LETTERS = {
    "\u064a": "\u06cc",  # Arabic yeh -> Farsi/Urdu yeh
    "\u0649": "\u06cc",  # alef maksura -> Urdu yeh
    "\u0643": "\u06a9",  # Arabic kaf -> keheh
    "\u0647": "\u06c1",  # Arabic heh -> heh goal
    "\u0629": "\u06c3",  # teh marbuta -> teh marbuta goal
    "\u06c0": "\u06c2",  # heh with yeh above (Arabic form) -> Urdu form
}
_URDU_DIGITS = {0x06F0 + i: str(i) for i in range(10)} | {0x0660 + i: str(i) for i in range(10)}
# Harakat and Quranic marks: fatha, damma, kasra, tanwin, shadda, sukun, superscript alef and friends.
_DIACRITICS = {cp: None for cp in [*range(0x064B, 0x0660), 0x0670, *range(0x06D6, 0x06DD), *range(0x06DF, 0x06E5),
                                   0x06E7, 0x06E8, *range(0x06EA, 0x06EE)]}
_ARABIC_SCRIPT = str.maketrans(_URDU_LETTERS) | _URDU_DIGITS | _DIACRITICS

# Cyrillic and Greek letters that render like Latin ones.
_HOMOGLYPHS = str.maketrans({
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s",
    "ԁ": "d", "һ": "h", "ӏ": "l", "ԛ": "q", "ԝ": "w", "к": "k", "м": "m", "т": "t", "н": "h", "в": "b",
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T",
    "Х": "X", "У": "Y", "І": "I", "Ј": "J", "Ѕ": "S",
    "α": "a", "ο": "o", "ρ": "p", "ν": "v", "τ": "t", "ι": "i", "κ": "k", "ε": "e", "υ": "u",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O",
    "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
})
_CYRILLIC_GREEK = re.compile(r"[\u0370-\u03ff\u0400-\u04ff]")
_LATIN = re.compile(r"[A-Za-z]")
# A word with the combining marks inside it (Latin, Cyrillic and general combining blocks).
_WORD_WITH_MARKS = re.compile(
    r"(?:\w|[\u0300-\u036f\u0483-\u0489\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f])+")

_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"})
# Leet characters with a Latin letter on both sides (j1had, sh@heed, k4fir); covid19, b4 and @user stay as they are.
_LEET_RUN = re.compile(r"(?<=[A-Za-z])[013457@$]+(?=[A-Za-z])")
_NUMBER_RUN = re.compile(r"\d{3}|\$\d")  # 1000 in a1000b, a price in US$5k: a number, not leet
# Currency code before the run (Rs5k); the character before the code must not be one leet folding can change.
_CURRENCY_BEFORE = re.compile(r"(?:^|[^A-Za-z013457@$])(?:rs|pkr|inr|usd|us|eur|gbp|aed|sar)$", re.IGNORECASE)
# Four or more single letters joined by one repeated separator: k-a-f-i-r, k.a.f.i.r, k a f i r, k_a_f_i_r.
# @ and $ count as word characters at the edges, so the outcome does not depend on leet folding (s@b m.u.r.t.a.d).
_SPACED = re.compile(r"(?<![\w@$])[^\W\d_](?:[-._* ][^\W\d_]){3,}(?![\w@$])")
_REPEATS = re.compile(r"([^\W\d_])\1{2,}")  # letters only: 1000, 5000000 and www stay
_SPACES = re.compile(r"[^\S\n]+")
_NEWLINES = re.compile(r"\s*\n\s*")
# Spans kept verbatim by the evasion step: URLs, e-mail addresses, @mentions, bare domains (example.com/path).
_TLDS = ("com|org|net|edu|gov|mil|int|info|biz|io|co|pk|in|uk|us|ae|sa|af|bd|me|tv|ly|gl|be|to|ai|app|dev|xyz|news"
         "|online|site|tk|ru|de|fr|ca|au")
_PROTECTED = re.compile(
    r"(?:https?://|www\.)\S+"
    r"|(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
    r"|(?<![\w@])@\w+"
    rf"|(?<![\w@.-])(?:[A-Za-z0-9-]+\.)+(?:{_TLDS})(?![\w-]|\.\w)(?:[/?#]\S*)?",
    re.IGNORECASE)
# Whitespace-delimited tokens that could hold a protected span; _PROTECTED runs only inside these (speed).
_PROTECT_HINT = re.compile(r"(?<!\S)[^\s@.:]*[@.:]\S*")


def _fold_leet(match: re.Match) -> str:
    run = match.group(0)
    if _NUMBER_RUN.search(run) or _CURRENCY_BEFORE.search(match.string, 0, match.start()):
        return run
    return run.translate(_LEET)


def _join_spaced(match: re.Match) -> str:
    text = match.group(0)
    if len(set(text[1::2])) != 1:  # mixed separators: not one spaced-out word
        return text
    return text[0::2]


def _fold_homoglyphs(text: str) -> str:
    if not _CYRILLIC_GREEK.search(text):
        return text

    def fold_word(m: re.Match) -> str:
        word = m.group(0)
        # Only words that also contain Latin letters are disguised Latin; real Cyrillic/Greek text stays.
        return word.translate(_HOMOGLYPHS) if _LATIN.search(word) else word

    # A word runs on through combining marks, so "aс\u0327с" is one word on every pass.
    return _WORD_WITH_MARKS.sub(fold_word, text)


def _fold_evasions(text: str) -> str:
    joined = _SPACED.sub(_join_spaced, text)
    if joined != text and not joined.isascii():
        # A joined word can compose (conjoining jamo) or be a Latin word with a look-alike in it ("A A A К").
        joined = unicodedata.normalize("NFKC", _fold_homoglyphs(unicodedata.normalize("NFKC", joined)))
    if any(c in joined for c in "013457@$"):
        joined = _LEET_RUN.sub(_fold_leet, joined)
    return _REPEATS.sub(r"\1\1", joined)


def normalize(text: str) -> str:
    """Return the canonical form of ``text`` that every model sees (see the module docstring)."""
    if not text.isascii():  # every step up to whitespace only touches non-ASCII characters
        text = unicodedata.normalize("NFKC", text.translate(_DROP_CONTROLS))
        folded = _fold_homoglyphs(text.translate(_ARABIC_SCRIPT))
        if folded != text:
            text = unicodedata.normalize("NFKC", folded)
    text = _SPACES.sub(" ", text)
    text = _NEWLINES.sub("\n", text).strip()
    pieces, start = [], 0
    for hint in _PROTECT_HINT.finditer(text):
        for m in _PROTECTED.finditer(text, hint.start(), hint.end()):
            pieces += [_fold_evasions(text[start:m.start()]), m.group(0)]
            start = m.end()
    if not pieces:
        return _fold_evasions(text)
    pieces.append(_fold_evasions(text[start:]))
    return "".join(pieces)


# --- language identification -------------------------------------------------------------------------------------

_WORD = re.compile(r"[^\W\d_]+")
_ARABIC_LETTER = re.compile(r"[\u0600-\u06ff\u0750-\u077f\ufb50-\ufdff\ufe70-\ufeff]")
# Words that are Roman Urdu and (almost) never English. Ambiguous ones (to, me, he, is, us, main, par) are left out.
_ROMAN_UR = frozenset("""
hai hain hy hay hen hn nahi nahin nai ni nhi na kya kia kyun kyu kyon kiyun kaise kese kaisay kesay kab kahan kidhar
mein mai mujhe mujhy mjhe mera meri mere tera teri tere tum tm tumhara tumhari aap ap apna apni apne hum hm hamara
hamari humara humari woh wo yeh ye unka unki unke inka inki inke iska iski uska uski unhon inhon ka ki ke ko se ne
aur or bhi tha thi thay thy hota hoti hotay hoga hogi honge kar kr karo kro karna krna karte krte karta krta kiya
diya dia gaya gya gayi gai raha rha rahi rhi rahe rhe wala wali walay waly liye lye liya saath sath bohat bahut
bhot acha accha achha bura kuch kuchh sab koi phir fir abhi ab jab tab agar magar lekin laikin kyunke kyunki
bhai bhae yaar yar yr dost log logon logo bachay bachon zindagi allah khuda inshallah insha mashallah masha
subhanallah jazakallah shaheed shaheedon shahadat jannat dushman zulm zalim ummat qaum watan mulk hukumat fauj
kafir kafiron gustakh saza qatl khoon jihad mujahid mujahideen musalman musalmano hamesha kabhi kabi sirf bas
jaldi dekho dekha suno suna bolo bola samjho samjha chahiye chahye sakta sakti sakte paisa paise ghar bazar
shukriya maaf nafrat mohabbat aman sulah behen bhen beta beti maa baap walid sahab sahib ji jee haan han
""".split())
_EN = frozenset("""
the a an and or but of to in on at for with from by about is are was were be been being have has had do does did
not no this that these those it its they them their there here what which who whom whose when where why how all
any some more most other such only own same so than too very can will just should would could might must shall
i you we she he my your our his her me us him if then because as until while into through during before after
above below up down out off over under again further once people said says news report police government
""".split())


def detect_language(text: str) -> str:
    """Tag a text ``en``, ``ur`` (Arabic script), ``roman_ur`` or ``other``.

    Script decides Urdu; for Latin script a count of unambiguous Roman Urdu words against English function words
    decides between English and Roman Urdu (code-mixed posts go to whichever dominates). Anything with no Latin or
    Arabic-script letters is ``other``.
    """
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return "other"
    arabic = sum(1 for c in letters if _ARABIC_LETTER.match(c))
    latin = sum(1 for c in letters if "a" <= c.lower() <= "z")
    if arabic >= latin and arabic / len(letters) >= 0.3:
        return "ur"
    if latin / len(letters) < 0.5:
        return "other"
    words = [w.lower() for w in _WORD.findall(text) if w.isascii()]
    roman = sum(1 for w in words if w in _ROMAN_UR)
    english = sum(1 for w in words if w in _EN)
    if roman >= 2 and roman >= english or roman == 1 and english == 0 and len(words) <= 4:
        return "roman_ur"
    return "en"
