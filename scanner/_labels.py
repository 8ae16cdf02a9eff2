"""Which output of a classifier means "refusal": read from its labels, never assumed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ._errors import ModelLoadError
from ._text import InputFormat

__all__ = ["KNOWN_LABEL_SETS", "LabelInfo", "resolve_labels"]

#: Label sets norefusal recognises: refusal label and the input format the model was trained on.
KNOWN_LABEL_SETS: dict[frozenset[str], tuple[str, InputFormat]] = {
    frozenset({"NORMAL", "REJECTION"}): ("REJECTION", InputFormat.RESPONSE),  # ProtectAI
    frozenset({"Non-refusal", "Refusal"}): ("Refusal", InputFormat.CONVERSATION),  # agentlans
    frozenset({"compliance", "refusal"}): ("refusal", InputFormat.RESPONSE),  # norefusal
}


class LabelInfo:
    """The label order of a model's logits and the index that means refusal."""

    __slots__ = ("input_format", "labels", "refusal_index")

    def __init__(
        self, labels: Sequence[str], refusal_index: int, input_format: InputFormat
    ) -> None:
        self.labels = tuple(labels)
        self.refusal_index = refusal_index
        self.input_format = input_format


def resolve_labels(id2label: Mapping[int | str, str], *, where: str) -> LabelInfo:
    """Map a model's ``id2label`` onto a :class:`LabelInfo`.

    Raises:
        ModelLoadError: the labels are not one of :data:`KNOWN_LABEL_SETS`; the message names
            them and the file they came from.
    """
    try:
        ordered = [id2label[k] for k in sorted(id2label, key=lambda k: int(k))]
    except (TypeError, ValueError) as exc:
        raise ModelLoadError(
            f"{where}: id2label keys must be integers, got {list(id2label)}."
        ) from exc
    known = KNOWN_LABEL_SETS.get(frozenset(ordered))
    if known is None or len(ordered) != 2:
        sets = "; ".join(sorted("/".join(sorted(s)) for s in KNOWN_LABEL_SETS))
        raise ModelLoadError(
            f"{where}: unrecognised labels {ordered}. norefusal needs a binary refusal "
            f"classifier with one of these label sets: {sets}."
        )
    refusal, fmt = known
    return LabelInfo(ordered, ordered.index(refusal), fmt)
