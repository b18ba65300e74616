"""Versioned prompts, shipped as package data beside this module.

A version is three files under ``prompts/``: ``NAME.VERSION.md`` (the system prompt),
``NAME.VERSION.user.md`` (the user turn, with ``{input_json}`` where the input goes) and
``NAME.VERSION.schema.json`` (the JSON schema the answer is forced into through tool use).
A change to any of them is a new version, recorded in docs/DECISIONS_LOG.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

CUSTOMER_ANALYSIS = "customer_analysis.v1"


@dataclass(frozen=True, slots=True)
class Prompt:
    version: str
    system: str
    user_template: str
    schema: dict[str, Any]

    def user(self, input_json: str) -> str:
        return self.user_template.replace("{input_json}", input_json)


def load_prompt(version: str = CUSTOMER_ANALYSIS) -> Prompt:
    """Read a prompt version; FileNotFoundError when it does not exist."""
    folder = resources.files("adapters.bedrock").joinpath("prompts")
    system = folder.joinpath(f"{version}.md").read_text(encoding="utf-8")
    user = folder.joinpath(f"{version}.user.md").read_text(encoding="utf-8")
    schema = json.loads(folder.joinpath(f"{version}.schema.json").read_text(encoding="utf-8"))
    if "{input_json}" not in user:
        raise ValueError(f"prompt {version}: the user template has no {{input_json}}")
    return Prompt(version, system.strip(), user.strip(), schema)
