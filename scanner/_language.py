"""Which model reads a text: English (or too little to tell) vs another language. Pure string work.

The default scanner sends English to its English model, unchanged, and every other language to
the multilingual model. The guess is made on a bounded sample of the text (its head and tail),
so its cost does not grow with the output, and it is deliberately conservative:

- Quoted passages, inline code and fenced code blocks are set aside first, so an English answer
  that quotes or translates another language stays English, and an answer in another language
  that quotes English stays in its language. If too little is left, the whole sample is used
  (an answer that is only code with German error messages is German).
- Scripts other than Latin (Han, kana, Hangul, Thai, Cyrillic, Arabic, Devanagari...) count as
  another language when they make up a fair share of the words.
- Latin-script text is English unless the function words of one of the other Latin-script
  languages (es, pt, fr, it, de, nl, pl, tr, id, vi) outnumber its English function words,
  counting words with letters English does not use (ñ, ß, ł, ư...) for the others.
- A text with no signal at all ("42", "OK", a code snippet) is English: the English model has
  been trained on such short answers.
"""

from __future__ import annotations

import re

from ._visible import visible_windows

__all__ = ["ENGLISH", "OTHER", "guess_language", "is_english"]

ENGLISH = "en"
#: Any language but English (the multilingual model's).
OTHER = "xx"

_SAMPLE_HEAD = 1500
_SAMPLE_TAIL = 500

_FENCED = re.compile(r"```.*?(?:```|$)", re.S)
_INLINE_CODE = re.compile(r"`[^`\n]{0,200}`")
_QUOTED = re.compile(
    r'"[^"\n]{1,300}"|\u201c[^\u201d\n]{1,300}\u201d|\u201e[^\u201c\u201d"\n]{1,300}[\u201c\u201d"]'
    r"|\u00ab[^\u00bb\n]{1,300}\u00bb|\u300c[^\u300d\n]{1,300}\u300d|\u300e[^\u300f\n]{1,300}\u300f"
)
_ET_AL = re.compile(r"\bet al\b\.?")
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")

#: Characters that write words without spaces (or in syllable blocks): about two per word.
_UNSPACED = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\u0e00-\u0e7f]")
#: Words in alphabets other than Latin.
_OTHER_ALPHABET = re.compile(
    r"[\u0370-\u03ff\u0400-\u052f\u0590-\u05ff\u0600-\u06ff\u0750-\u077f\u0900-\u097f"
    r"\ufb50-\ufdff\ufe70-\ufeff]"
)
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f\u1e00-\u1eff]")
_NON_ENGLISH_LETTER = re.compile(r"[\u00c0-\u00ff\u0100-\u024f\u1e00-\u1eff]")


def _vocab(words: str) -> frozenset[str]:
    return frozenset(words.split())


_EN = _vocab(
    "the and of to a in is you that it for with this are was be have not can your i on as but "
    "what if or an will would can't don't i'm it's there they we my me do has from at by which "
    "about how here sorry please help should could more just some like than when their been were "
    "these those because into our any make sure means called word language that's i'll you're "
    "isn't doesn't won't i've let's there's what's here's we're they're cannot such "
    "error found unable failed invalid no am"
)
_OTHERS: dict[str, frozenset[str]] = {
    "es": _vocab(
        "de la que el en y los del se las por un para con no una su al lo como más pero sus le ya "
        "o este sí porque esta entre cuando muy sin sobre también me hasta hay donde desde "
        "nos puedo puede es son está eso siento sí gracias"
    ),
    "pt": _vocab(
        "de a o que e do da em um para é com não uma os no se na por mais as dos como mas foi ao "
        "ele das tem à seu sua ou ser quando muito há nos já está eu também só pelo pela até "
        "isso ela entre você posso vou ter esse essa pode obrigado"
    ),
    "fr": _vocab(
        "de la le et les des en un du une que est pour qui dans a par plus pas au sur ne se ce il "
        "sont avec je vous nous mais ou son sa cette été aussi peut être très bien ça c'est "
        "j'ai n'est d'un d'une l'on oui merci"
    ),
    "it": _vocab(
        "di e il la che è per un in non una sono mi si lo ha le con ti ma da gli del della come "
        "io questo questa anche più al nel alla dei perché può posso devo molto ci se ho "
        "sei sì va bene grazie"
    ),
    "de": _vocab(
        "der die und in den von zu das mit sich des auf für ist im dem nicht ein eine als auch es "
        "an werden aus er hat dass sie nach wird bei einer um am sind noch wie einem über einen so "
        "zum war haben nur oder aber vor zur bis mehr durch man kann ich du dir mir wir ihr "
        "sehr muss diese dieser kein keine nein ja bitte leider"
    ),
    "nl": _vocab(
        "de het een en van ik te dat die in is niet op je zijn met voor er maar om ook als aan bij "
        "kan naar nog wat door wordt dan hij deze geen jij uit heb wel zo moet dit helaas graag "
        "mijn jouw"
    ),
    "pl": _vocab(
        "i w na z się nie do to że jest o jak ale po co tak za od przez jego dla tylko może mnie "
        "czy ja jestem są już by bardzo mogę tym tego ten jej"
    ),
    "tr": _vocab(
        "ve bir bu da de için ile çok daha ne gibi olarak ama değil var ben sen o en kadar sonra "
        "her şey olan yok mi mı bunu ise olduğu"
    ),
    "id": _vocab(
        "yang dan di ini itu dengan untuk tidak dari dalam akan pada juga saya ke karena ada bisa "
        "oleh atau anda kami mereka sudah telah lebih jika tetapi sebagai seperti hanya bahwa apa "
        "dapat maaf adalah bukan belum saja lagi sambil aku kamu kita"
    ),
    "vi": _vocab(
        "và của có là không được cho một người những này với các trong đã để tôi bạn thì khi "
        "cũng như đó nhưng từ sẽ rất vì ra lại nên"
    ),
}


def _sample(text: str) -> str:
    # The visible windows (norefusal._visible): padding cannot hide the text's language.
    head, tail = visible_windows(text, head=_SAMPLE_HEAD, tail=_SAMPLE_TAIL)
    return head if tail is None else head + "\n" + tail


def _weigh(text: str) -> tuple[float, float, float, int]:
    """(English score, best other Latin-language score, non-Latin units, Latin words)."""
    words = [w.lower() for w in _WORD.findall(_ET_AL.sub(" ", text.replace("\u2019", "'")))]
    # One-letter words ("a", "i", "w", "o") belong to too many languages to tell them apart.
    latin = [w for w in words if len(w) > 1 and _LATIN.search(w)]
    other_alphabet = sum(1 for w in words if _OTHER_ALPHABET.search(w))
    units = len(_UNSPACED.findall(text)) / 2 + other_alphabet
    english = float(sum(w in _EN for w in latin))
    accented = sum(1 for w in latin if _NON_ENGLISH_LETTER.search(w))
    other = max(sum(w in vocab for w in latin) for vocab in _OTHERS.values()) + accented
    return english, float(other), units, len(latin)


def _signal(weights: tuple[float, float, float, int]) -> bool:
    return weights[0] + weights[1] + weights[2] > 0


def guess_language(text: str) -> str:
    """:data:`ENGLISH` or :data:`OTHER` for ``text`` (English when there is too little to tell)."""
    sample = _sample(text)
    prose = _QUOTED.sub(" ", _INLINE_CODE.sub(" ", _FENCED.sub(" ", sample)))
    weights = _weigh(prose)
    if not _signal(weights):
        # No prose to go by: an answer that is only code or quotes speaks the language of its
        # strings, and failing that, of the whole sample.
        weights = _weigh(" ".join(m.group(0) for m in _QUOTED.finditer(sample)))
        if not _signal(weights):
            weights = _weigh(sample)
    english, other, units, latin_words = weights
    if units > 0 and units >= 0.5 * latin_words:
        return OTHER
    # One stray function word ("Leonardo da Vinci", "La Fe Foods") is not enough in a longer
    # English text; in a short one with no English function word it is all there is to go by.
    if other > english and (other >= 2 or (english == 0 and latin_words <= 6)):
        return OTHER
    return ENGLISH


def is_english(text: str) -> bool:
    """Whether the English model should read ``text`` (see :func:`guess_language`)."""
    return guess_language(text) == ENGLISH
