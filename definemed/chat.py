"""Chat prompts as token ids: the same in every backend and on every day (A.1, A.7.1).

Labelling and generation render each prompt here, with transformers, from the model folder's own
Jinja chat template, and hand vLLM or transformers the token ids. Three things would otherwise make
the prompt depend on where and when it is built:
- With `tekken.json` in the folder and mistral-common installed (vLLM depends on it),
  `AutoTokenizer` loads `MistralCommonBackend`, which ignores the Jinja template; the tokenizer is
  read from tokenizer.json instead (`mistral_format=False`, the switch vLLM's own "hf" tokenizer
  mode sets).
- Mistral-Small-3's template writes today's date into its default system prompt
  (`strftime_now`, which transformers defines as `datetime.now()` of its chat_template_utils
  module and does not let a caller replace): the template is rendered on a clock that reads the
  date fixed in config (`chat_template_date`) instead.
- Text such as `</s>` or `[INST]` inside a web document or a query would be encoded as control
  tokens: `sanitize_control_tokens` encodes message text as text, so only the template itself
  writes control tokens.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
from pathlib import Path


def load_tokenizer(folder):
    """The folder's tokenizer from tokenizer.json, with its Jinja chat template."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, mistral_format=False)
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            f"{Path(folder)}: the tokenizer has no chat template (tokenizer_config.json, chat_template.jinja)"
        )
    return tokenizer


def template_day(date: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(str(date))
    except ValueError as e:
        raise ValueError(f"chat_template_date: {date!r} is not a date (YYYY-MM-DD)") from e


@contextlib.contextmanager
def template_clock(date: str):
    """While rendering: the templates' `strftime_now` reads `date` (midnight) instead of today."""
    from transformers.utils import chat_template_utils

    day = datetime.datetime.combine(template_day(date), datetime.time())
    real = chat_template_utils.datetime

    class Fixed(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return day.replace(tzinfo=tz)

    chat_template_utils.datetime = Fixed
    try:
        yield
    finally:
        chat_template_utils.datetime = real


def chat_prompt_ids(tokenizer, messages: list[dict], template_date: str) -> list[int]:
    """Token ids of `messages` in the tokenizer's chat template, with the generation prompt and no
    second BOS; message text encoded as text."""
    with template_clock(template_date):
        ids = tokenizer.apply_chat_template(
            messages, tokenize=True, add_generation_prompt=True, sanitize_control_tokens=True, return_dict=False
        )
    return [int(i) for i in ids]


def user_prompt_ids(tokenizer, content: str, template_date: str) -> list[int]:
    """`content` as the single user turn, no system prompt (A.1, A.7.1)."""
    return chat_prompt_ids(tokenizer, [{"role": "user", "content": content}], template_date)


def prompt_sha256(ids) -> str:
    """The hash recorded with every label and response: of the exact token ids the model read."""
    return hashlib.sha256(",".join(str(int(i)) for i in ids).encode()).hexdigest()
