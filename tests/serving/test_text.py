import pytest

from serving.text import detect_language, normalize


@pytest.mark.parametrize("raw, expected", [
    ("j1had is f@rz", "jihad is farz"),                     # leetspeak inside words
    ("sh@heed bhai", "shaheed bhai"),
    ("k-a-f-i-r", "kafir"),                                  # spaced-out letters
    ("k a f i r log", "kafir log"),
    ("ji\u200bhad", "jihad"),                                # zero-width space
    ("\u202ekafir\u202c", "kafir"),                          # bidi override
    ("раkistan", "pakistan"),                                # Cyrillic р and а
    ("plzzzzz", "plzz"),                                     # elongation
    ("ＪＩＨＡＤ", "JIHAD"),                                  # full-width (NFKC)
    ("كيا هے يه", "کیا ہے یہ"),                              # Arabic yeh/kaf/heh -> Urdu letters
    ("اللَّهُ", "اللہ"),                                      # diacritics dropped
    ("۱۲۳ لوگ", "123 لوگ"),                                  # Urdu digits
    ("  hello \n\n  world  ", "hello\nworld"),
])
def test_normalize_folds_variants(raw, expected):
    assert normalize(raw) == expected


@pytest.mark.parametrize("text", ["covid19 cases", "b4 the match", "@user 2nd innings", "U.S.A. policy",
                                  "I am a big fan", "Привет мир"])
def test_normalize_leaves_ordinary_text(text):
    assert normalize(text) == text


def test_normalize_is_idempotent():
    for text in ["j1had k-a-f-i-r كيا", "ye log kab sudhrenge", "۱۲ بجے"]:
        assert normalize(normalize(text)) == normalize(text)


@pytest.mark.parametrize("text, lang", [
    ("The police said the suspects were arrested on Monday.", "en"),
    ("ye log kab sudhrenge yaar, sab ko pata hai", "roman_ur"),
    ("bhai kya scene hai aaj", "roman_ur"),
    ("آج موسم بہت اچھا ہے", "ur"),
    ("Привет мир", "other"),
    ("12345 !!!", "other"),
])
def test_detect_language(text, lang):
    assert detect_language(text) == lang
