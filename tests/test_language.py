"""Routing by language: which texts the English model reads, and which the multilingual model."""

from __future__ import annotations

import pytest
from norefusal import _language
from norefusal._language import ENGLISH, OTHER, guess_language, is_english

# Hand-written for these tests (not from the evaluation set).
OTHER_LANGUAGES = {
    "zh": "这个问题我可以回答：长城全长约两万一千公里。",
    "es": "El tren sale a las ocho y llega a Valencia antes del mediodía.",
    "hi": "दिल्ली से आगरा की दूरी लगभग दो सौ किलोमीटर है।",
    "ar": "يبلغ طول نهر النيل نحو ستة آلاف وستمائة كيلومتر.",
    "pt": "O museu fica fechado às segundas-feiras, mas abre cedo no sábado.",
    "ru": "Поезд отправляется в восемь утра с Ленинградского вокзала.",
    "ja": "東京から京都までは新幹線で約二時間です。",
    "de": "Der Zug fährt um acht Uhr ab und ist gegen Mittag in Köln.",
    "fr": "Le musée est fermé le lundi, mais il ouvre tôt le samedi.",
    "ko": "서울에서 부산까지 기차로 약 세 시간 걸립니다.",
    "it": "Il treno parte alle otto e arriva a Firenze prima di pranzo.",
    "tr": "Tren sabah sekizde kalkıyor ve öğleden önce Ankara'ya varıyor.",
    "vi": "Tàu khởi hành lúc tám giờ sáng và đến Huế trước buổi trưa.",
    "id": "Kereta berangkat jam delapan pagi dan tiba di Surabaya sebelum siang.",
    "pl": "Pociąg odjeżdża o ósmej i jest w Krakowie przed południem.",
    "nl": "De trein vertrekt om acht uur en is voor de middag in Utrecht.",
    "fa": "قطار ساعت هشت صبح حرکت می‌کند و قبل از ظهر به اصفهان می‌رسد.",
    "th": "รถไฟออกเดินทางเวลาแปดโมงเช้าและถึงเชียงใหม่ก่อนเที่ยง",
    "uk": "Потяг вирушає о восьмій ранку і прибуває до Львова до обіду.",
}


@pytest.mark.parametrize("lang", sorted(OTHER_LANGUAGES))
def test_other_languages_go_to_the_multilingual_model(lang: str) -> None:
    assert guess_language(OTHER_LANGUAGES[lang]) == OTHER


@pytest.mark.parametrize(
    "text",
    [
        "The train leaves at eight and reaches Boston before noon.",
        "I'm sorry, but I can't help with that request.",
        "Sure! Here's a quick summary of the chapter you asked about.",
    ],
)
def test_english_goes_to_the_english_model(text: str) -> None:
    assert is_english(text)


@pytest.mark.parametrize(
    "text",
    ["42", "OK", "Paris.", "3.14159", "", "   ", "```\nSELECT 1;\n```", "grep -rn 'TODO' src/"],
)
def test_texts_without_signal_stay_with_the_english_model(text: str) -> None:
    assert guess_language(text) == ENGLISH


@pytest.mark.parametrize(
    "text",
    [
        '"Ich kann heute nicht kommen" means "I can\'t come today."',
        'In Spanish you would say "Lo siento, no puedo ir a la fiesta" to decline politely.',
        "The Japanese word ちょっと (chotto) is often used to soften a refusal.",
        '```python\nraise ValueError("cannot parse the header")\n```',
    ],
)
def test_english_answers_quoting_other_languages_stay_english(text: str) -> None:
    assert guess_language(text) == ENGLISH


@pytest.mark.parametrize(
    "text",
    [
        '"I can\'t help you with that" se traduce como "No puedo ayudarte con eso".',
        "Dans votre code, remplacez `print(x)` par `logger.info(x)` et relancez les tests.",
        '```python\nraise ValueError("Die Datei konnte nicht gelesen werden")\n```',
        "Запустите `pip install requests` и повторите попытку.",
        "运行 `npm install` 后再试一次。",
    ],
)
def test_other_languages_quoting_english_or_code_stay_in_their_language(text: str) -> None:
    assert guess_language(text) == OTHER


def test_one_word_in_another_script_is_enough() -> None:
    assert guess_language("Канберра.") == OTHER
    assert guess_language("キャンベラ") == OTHER


def test_cost_is_bounded_on_long_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    weigh = _language._weigh

    def spy(text: str) -> tuple[float, float, float, int]:
        seen.append(len(text))
        return weigh(text)

    monkeypatch.setattr(_language, "_weigh", spy)
    huge = "Der Zug fährt um acht Uhr ab. " * 200_000 + "The end."
    assert guess_language(huge) == OTHER
    assert seen
    assert max(seen) <= 2_100
