"""What a console action hands back to its route: the row it changed and the sentence that says so."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Done(Generic[T]):
    """``value`` is what the action wrote; ``message`` is the toast the person who acted reads."""
    value: T
    message: str
