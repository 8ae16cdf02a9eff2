"""Fakes shared by the policy tests: scanners that count, raise or hang, and a toy response."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from norefusal import NoRefusalScanner, ScanResult
from norefusal.policies import Candidate

REFUSAL = "I'm sorry, but I can't help with that."
REFUSAL_2 = "I cannot assist with that request."
ANSWER = "Sure, here is how you bake bread: mix flour, water and salt, then bake."
ANSWER_2 = "Here you go: the answer is 42."
BLOCK_MESSAGE = "I'm sorry, but I can't help with that request: blocked by the Acme content filter."
PROMPT = "How do I bake bread at home?"


class CountingScanner(NoRefusalScanner):
    """The keyword scanner, counting its scans."""

    def __init__(self) -> None:
        super().__init__(model="keyword")
        self.calls = 0
        self._count_lock = threading.Lock()

    def scan(self, prompt: str | None, output: str | None) -> ScanResult:
        with self._count_lock:
            self.calls += 1
        return super().scan(prompt, output)


class RaisingScanner:
    """A backend that always fails; its message quotes the text, as careless backends do."""

    threshold = 0.5
    model_name = "raising"

    def scan(self, prompt: str | None, output: str | None) -> ScanResult:
        raise RuntimeError(f"backend exploded on {output!r}")


class HangingScanner:
    """A backend that hangs until released (or 30 s); tests release it on teardown."""

    threshold = 0.5
    model_name = "hanging"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Event()

    def scan(self, prompt: str | None, output: str | None) -> ScanResult:
        self.started.set()
        self.release.wait(30)
        raise RuntimeError("released")


@dataclass(frozen=True)
class Reply:
    """A toy model response: one text per choice, optionally a provider refusal per choice."""

    texts: tuple[str | None, ...]
    refusals: tuple[str | None, ...] = ()
    source: str = "primary"


def reply(*texts: str | None, source: str = "primary") -> Reply:
    return Reply(tuple(texts), source=source)


def candidates(r: Reply) -> list[Candidate]:
    refusals = r.refusals or (None,) * len(r.texts)
    return [
        Candidate(text, refusal=refusal, detail="message.refusal" if refusal else None)
        for text, refusal in zip(r.texts, refusals, strict=True)
    ]


def replace(r: Reply, refused: Sequence[int], message: str) -> Reply:
    texts = tuple(message if i in refused else t for i, t in enumerate(r.texts))
    return Reply(texts, source=r.source)
