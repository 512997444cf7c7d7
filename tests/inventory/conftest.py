"""Fixtures for the inventory tests: a prompt that counts its calls."""

from __future__ import annotations

import pytest


class CountingPrompt:
    """Stands in for the terminal: answers every password question and records it."""

    def __init__(self, answer: str = "typed-at-the-prompt-42") -> None:
        self.answer = answer
        self.questions: list[str] = []

    def __call__(self, question: str) -> str:
        self.questions.append(question)
        return self.answer


@pytest.fixture
def prompt() -> CountingPrompt:
    return CountingPrompt()
