"""What an account-settings activity answers: the words an operator reads on its step."""

from __future__ import annotations

from pydantic import BaseModel


class SettingResult(BaseModel):
    detail: str
    attempt: int = 1
