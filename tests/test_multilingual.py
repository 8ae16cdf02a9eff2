"""The multilingual model (issue 17): the n-gram backend, the routing backend, the default preset.

The per-language smoke tests run the shipped default scanner on texts written for these tests
(not taken from ``tests/data/multilingual_eval.jsonl``): one refusal and one ordinary answer in
each of the 19 languages besides English.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from norefusal import NoRefusalScanner
from norefusal._artifact import CONFIG_NAME, sha256_file
from norefusal._backends import Backend
from norefusal._backends._keyword import KeywordBackend
from norefusal._backends._ngram import NgramBackend, NgramConfig, ngram_ids, read_ngram_config
from norefusal._backends._routed import RoutedBackend, align_threshold
from norefusal._errors import ModelLoadError
from norefusal._presets import MULTILINGUAL_MODEL_DIR

# (language, refusal, ordinary answer), hand-written for these tests.
SMOKE = [
    ("zh", "抱歉，我不能帮你伪造身份证件。", "长城全长约两万一千公里，修建历时两千多年。"),
    ("es", "Lo siento, pero no puedo darte instrucciones para forzar una cerradura ajena.",
     "El tren sale a las ocho y llega a Valencia antes del mediodía."),
    ("hi", "माफ़ कीजिए, मैं किसी का फ़ोन हैक करने में मदद नहीं कर सकता।",
     "दिल्ली से आगरा की दूरी लगभग दो सौ किलोमीटर है।"),
    ("ar", "عذرًا، لا يمكنني مساعدتك في تزوير وثيقة رسمية.",
     "يبلغ طول نهر النيل نحو ستة آلاف وستمائة كيلومتر."),
    ("pt", "Desculpe, mas não posso ajudar a falsificar um atestado médico.",
     "O museu fica fechado às segundas-feiras, mas abre cedo no sábado."),
    ("ru", "Извините, но я не могу помочь подделать документы.",
     "Поезд отправляется в восемь утра с Ленинградского вокзала."),
    ("ja", "申し訳ありませんが、偽の身分証明書の作り方はお教えできません。",
     "東京から京都までは新幹線で約二時間です。"),
    ("de", "Tut mir leid, aber beim Fälschen von Ausweisen kann ich nicht helfen.",
     "Der Zug fährt um acht Uhr ab und ist gegen Mittag in Köln."),
    ("fr", "Désolé, mais je ne peux pas vous aider à falsifier un document officiel.",
     "Le musée est fermé le lundi, mais il ouvre tôt le samedi."),
    ("ko", "죄송하지만 신분증을 위조하는 방법은 알려드릴 수 없습니다.",
     "서울에서 부산까지 기차로 약 세 시간 걸립니다."),
    ("it", "Mi dispiace, ma non posso aiutarti a falsificare un documento.",
     "Il treno parte alle otto e arriva a Firenze prima di pranzo."),
    ("tr", "Üzgünüm, sahte kimlik hazırlamana yardımcı olamam.",
     "Tren sabah sekizde kalkıyor ve öğleden önce Ankara'ya varıyor."),
    ("vi", "Xin lỗi, tôi không thể giúp bạn làm giả giấy tờ tùy thân.",
     "Tàu khởi hành lúc tám giờ sáng và đến Huế trước buổi trưa."),
    ("id", "Maaf, saya tidak bisa membantu memalsukan dokumen resmi.",
     "Kereta berangkat jam delapan pagi dan tiba di Surabaya sebelum siang."),
    ("pl", "Przepraszam, ale nie mogę pomóc w podrobieniu dokumentów.",
     "Pociąg odjeżdża o ósmej i jest w Krakowie przed południem."),
    ("nl", "Sorry, maar ik kan je niet helpen met het vervalsen van documenten.",
     "De trein vertrekt om acht uur en is voor de middag in Utrecht."),
    ("fa", "متأسفم، نمی‌توانم در جعل مدارک به شما کمک کنم.",
     "قطار ساعت هشت صبح حرکت می‌کند و قبل از ظهر به اصفهان می‌رسد."),
    ("th", "ขออภัย ฉันไม่สามารถช่วยปลอมแปลงเอกสารได้",
     "รถไฟออกเดินทางเวลาแปดโมงเช้าและถึงเชียงใหม่ก่อนเที่ยง"),
    ("uk", "Вибачте, але я не можу допомогти підробити документи.",
     "Потяг вирушає о восьмій ранку і прибуває до Львова до обіду."),
]  # fmt: skip

needs_model = pytest.mark.skipif(
    not (MULTILINGUAL_MODEL_DIR / CONFIG_NAME).is_file(),
    reason="the multilingual model is not in this checkout",
)


@pytest.fixture(scope="module")
def scanner() -> NoRefusalScanner:
    return NoRefusalScanner()


@needs_model
@pytest.mark.parametrize(("lang", "refusal", "answer"), SMOKE, ids=[s[0] for s in SMOKE])
def test_default_scanner_in_each_language(
    scanner: NoRefusalScanner, lang: str, refusal: str, answer: str
) -> None:
    assert scanner.scan("", refusal).is_refusal, lang
    assert not scanner.scan("", answer).is_refusal, lang


@needs_model
def test_condolences_and_translations_are_not_refusals(scanner: NoRefusalScanner) -> None:
    for text in (
        "Lo siento muchísimo por la muerte de tu abuelo. Tómate el tiempo que necesites.",
        "Es tut mir so leid, dass deine Katze gestorben ist.",
        '"I can\'t help you with that" se traduce como "No puedo ayudarte con eso".',
        '「お手伝いできません」は英語で "I can\'t help" という意味です。',
    ):
        assert not scanner.scan("", text).is_refusal, text


@needs_model
def test_english_scores_are_the_english_models_exactly() -> None:
    from norefusal._presets import DEFAULT_MODEL_DIR

    routed = NoRefusalScanner()
    english_only = NoRefusalScanner(model=DEFAULT_MODEL_DIR)
    texts = [
        "I can't help with that.",
        "The capital of Australia is Canberra.",
        "Sorry, my last regex was too greedy. Use ^\\d{3}$ instead.",
        "42",
    ]
    assert [r.score for r in routed.scan_batch([("", t) for t in texts])] == [
        r.score for r in english_only.scan_batch([("", t) for t in texts])
    ]


@needs_model
def test_shipped_artifact_is_small_and_verified() -> None:
    config = read_ngram_config(MULTILINGUAL_MODEL_DIR)
    size = sum(p.stat().st_size for p in MULTILINGUAL_MODEL_DIR.iterdir())
    default = MULTILINGUAL_MODEL_DIR.parent / "default"
    total = size + sum(p.stat().st_size for p in default.iterdir())
    assert total <= 60 * 1024 * 1024  # issue 17: 60 MB for all embedded models
    assert config.files["model.npz"] == sha256_file(MULTILINGUAL_MODEL_DIR / "model.npz")


# -- the n-gram backend on a tiny model built here -------------------------------------------


def _tiny(directory: Path, *, buckets: int = 64, dim: int = 4, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    np.savez(
        directory / "model.npz",
        emb_q=rng.integers(-127, 128, size=(buckets, dim), dtype=np.int8),
        emb_scale=np.full(buckets, 0.01, dtype=np.float32),
        w1=rng.normal(size=(dim, 8)).astype(np.float32),
        b1=np.zeros(8, dtype=np.float32),
        w2=rng.normal(size=(8, 2)).astype(np.float32),
        b2=np.zeros(2, dtype=np.float32),
    )
    config = {
        "name": "tiny-ngram", "kind": "char-ngram", "labels": ["compliance", "refusal"],
        "refusal_label": "refusal", "threshold": 0.4, "temperature": 1.0, "ngram_min": 1,
        "ngram_max": 3, "buckets": buckets, "head_chars": 50, "tail_chars": 20,
        "files": {"model.npz": sha256_file(directory / "model.npz")},
    }  # fmt: skip
    (directory / CONFIG_NAME).write_text(json.dumps(config))
    return directory


def test_ngram_ids_are_stable_across_processes() -> None:
    # A golden value: a change of the hash would silently break every shipped model.
    config = NgramConfig("x", 0.5, 1.0, 1, 3, 1 << 20, 100, 50)
    assert ngram_ids("No puedo.", config)[:5].tolist() == [103935, 129388, 152306, 169896, 202610]


def test_ngram_ids_normalise_case_digits_and_whitespace() -> None:
    config = NgramConfig("x", 0.5, 1.0, 1, 4, 1 << 20, 100, 50)
    same = ngram_ids("Ich  KANN nicht 2024", config)
    assert np.array_equal(same, ngram_ids("ich kann\nnicht 0000", config))


def test_ngram_ids_cost_is_bounded() -> None:
    config = NgramConfig("x", 0.5, 1.0, 1, 5, 1 << 20, 100, 50)
    huge = ngram_ids("日本語の文章です。" * 100_000, config)
    assert len(huge) <= 5 * 160  # at most 5 n-grams per kept character


def test_tiny_model_scores_in_range_and_batch_independent(tmp_path: Path) -> None:
    backend = NgramBackend(_tiny(tmp_path / "m"))
    texts = ["No puedo ayudarte.", "Der Zug fährt um acht.", "申し訳ありません", "x" * 10_000]
    batch = backend.predict(texts)
    assert batch.shape == (4,)
    assert np.all((batch >= 0) & (batch <= 1))
    assert [float(backend.predict([t])[0]) for t in texts] == batch.tolist()


def test_tampered_weights_are_refused(tmp_path: Path) -> None:
    directory = _tiny(tmp_path / "m")
    with (directory / "model.npz").open("ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ModelLoadError, match="SHA256"):
        NgramBackend(directory)


def test_a_config_of_another_kind_is_refused(tmp_path: Path) -> None:
    directory = _tiny(tmp_path / "m")
    raw = json.loads((directory / CONFIG_NAME).read_text())
    (directory / CONFIG_NAME).write_text(json.dumps(raw | {"kind": "onnx"}))
    with pytest.raises(ModelLoadError, match="char-ngram"):
        NgramBackend(directory)


# -- the routing backend ---------------------------------------------------------------------


class _Fixed(Backend):
    def __init__(self, value: float) -> None:
        self.value = value
        self.seen: list[str] = []
        self.name = f"fixed-{value}"

    def predict(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
        self.seen += list(texts)
        return np.full(len(texts), self.value)


def test_routing_sends_each_text_to_its_model_in_order() -> None:
    english, other = _Fixed(0.2), _Fixed(0.9)
    routed = RoutedBackend(english, other, english_threshold=0.63, multilingual_threshold=0.5)
    texts = ["I can't do that.", "No puedo hacerlo, lo siento mucho.", "OK", "我不能这样做。"]
    scores = routed.predict(texts)
    assert english.seen == ["I can't do that.", "OK"]
    assert other.seen == ["No puedo hacerlo, lo siento mucho.", "我不能这样做。"]
    assert scores[0] == scores[2] == 0.2  # the English model's score, untouched
    assert scores[1] == scores[3] == pytest.approx(0.63 + 0.4 * 0.37 / 0.5)


def test_align_threshold_keeps_order_and_the_decision() -> None:
    raw = np.linspace(0, 1, 101)
    mapped = align_threshold(raw, source=0.3, target=0.63)
    assert mapped[0] == 0
    assert mapped[-1] == pytest.approx(1)
    assert np.all(np.diff(mapped) > 0)
    assert np.array_equal(raw > 0.3, mapped > 0.63)


# -- the keyword preset in 20 languages ------------------------------------------------------


@pytest.mark.parametrize(("lang", "refusal", "answer"), SMOKE, ids=[s[0] for s in SMOKE])
def test_keyword_preset_in_each_language(lang: str, refusal: str, answer: str) -> None:
    keyword = KeywordBackend()
    assert keyword.score(refusal) > 0.5, lang
    assert keyword.score(answer) < 0.5, lang


@pytest.mark.parametrize(
    "text",
    [
        "No puedo evitar sonreír cada vez que lo recuerdo.",  # an idiom, not a refusal
        "Je ne peux pas m'empêcher de penser à ce voyage.",
        "Не могу дождаться выходных!",
        "Lo siento mucho por tu pérdida; tu madre era una persona maravillosa.",
        "Mein herzliches Beileid. Es tut mir sehr leid, dass dein Vater gestorben ist.",
        "Przepraszam za zamieszanie: pociąg odjeżdża o 9:15, nie o 9:50.",
        '"I can\'t help you with that" se traduce como "No puedo ayudarte con eso".',
        "「お手伝いできません」は丁寧な断り方です。",
    ],
)
def test_keyword_preset_exceptions(text: str) -> None:
    assert KeywordBackend().score(text) < 0.5, text


def test_keyword_matches_unspaced_scripts_without_word_boundaries() -> None:
    keyword = KeywordBackend()
    assert keyword.score("这个我帮不了你。") > 0.5
    assert keyword.score("ฉันช่วยเรื่องนี้ไม่ได้") > 0.5
    assert keyword.score("その質問にはお答えできません。") > 0.5
