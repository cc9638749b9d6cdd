"""Shared command-line plumbing of the scripts: make the repository importable and set up logging."""

import logging
import os
import sys
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# Credentials the scripts read from the environment (huggingface_hub: HF_TOKEN; the judges'
# default key). A server's error message may quote the caller's token and libraries put that
# message in their exceptions: every log line and uncaught traceback is scrubbed of their values.
SECRET_ENV = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "OPENAI_API_KEY")


def scrub_secrets(text: str) -> str:
    for name in SECRET_ENV:
        value = os.environ.get(name, "")
        if len(value) >= 8:  # a short value would blank ordinary words
            text = text.replace(value, f"<{name}>")
    return text


class ScrubSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = scrub_secrets(record.getMessage()), None
        if record.exc_info:
            record.exc_text = scrub_secrets("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
            record.exc_info = None
        return True


def print_scrubbed_exception(kind, exc, tb) -> None:
    sys.stderr.write(scrub_secrets("".join(traceback.format_exception(kind, exc, tb))))


def setup_logging() -> logging.Logger:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for handler in logging.getLogger().handlers:
        handler.addFilter(ScrubSecrets())
    sys.excepthook = print_scrubbed_exception
    return logging.getLogger(Path(sys.argv[0]).stem)


def set_torch_threads(threads: int | None) -> None:
    """Use the cores Snakemake gave the job, not every core of the node."""
    if threads:
        import torch

        torch.set_num_threads(threads)
