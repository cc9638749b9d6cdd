"""A rubric judge: stated rules in place of an LLM (the miniature's judge of 5.2 and 5.3).

The miniature's models are tiny; a tiny LLM judge of them is noise (a random one picked position A
300 times out of 300). This judge scores each response by fixed rules a reader can check, behind
the same client interface as the LLM judges (definemed.judges.client, backend ``rubric``): it reads
the same chat-completions request bodies, answers in the same record schema with JSON that parses
under the A.7 schemas (definemed.judges.prompts), and its answers go through the same cache. It loads
no model and makes no call.

What it sees: exactly what an LLM judge sees, the rendered A.7 user prompt. The context (the
reference answer), the query and the response(s) are read back out of that prompt
(`prompt_fields`); a prompt that does not parse unambiguously is recorded as a failed request.

The rules, fixed in code before any model's output was looked at (words: maximal runs of letters
and digits, lower-cased, so "12" and "m²" are words; punctuation is not):

1. Reference answer (+3 x share). The context is the reference answer; its key words are its
   words that are neither in the query nor German function words (`FUNCTION_WORDS`): for "Das
   Femur ist der längste Knochen des menschlichen Körpers." asked as "Welcher ist der längste
   Knochen des menschlichen Körpers?" that is {femur}. Points: 3 x the share of the key words found
   in the response. Without a context (or no key word) the rule gives nobody points.
2. Turn ended (+1). The response ends a sentence: its last character, before closing quotes or
   brackets, is . ! ? or an ellipsis. A judge sees only the text: whether the generation hit its
   token limit (`finish_reason`) is not in the prompt, and a text that stops mid-sentence is what
   a cut response looks like to any judge.
3. Repetition (-2 x share). The share of the response's word trigrams that repeat an earlier
   trigram of the same response (0 with fewer than 4 words).
4. Length (-1). Too short: fewer words than half the context's, or fewer than 3 (an empty
   response is too short). Too long: more than four times the context's words and more than 20
   words (more than 200 without a context).
5. Off-vocabulary words (-2 x share). The share of the response's words (those without digits)
   found in none of: the German vocabulary of definemed/miniature/fixture_text.yaml (every word of its
   slots, titles, sentences, styles, questions, answers, distractors and statements: the text the
   miniature's corpus and benchmarks are made of), the context, the query, `FUNCTION_WORDS`.

A response's score is the sum of the rules' points, rounded to 4 decimals.

Pairwise (A.7.2): the higher score wins, equal scores are a tie ("0"). Each response is scored on
its own, so both presentation orders give the same verdict by construction (no position bias).
`reasoning` gives both scores and names the rules whose points differ, largest difference first.

Failure modes (A.7.3), the stated mapping of rule findings to the schema's keys:
- omission: the response lacks some of the reference answer's key words, or it does not end a
  sentence (Table 10: "missing, leading to an incomplete ... answer");
- hallucination: the response lacks some of the reference answer's key words and has content words
  (not function words) found neither in the context nor in the query;
- irrelevance: the response has content words and none of them is in the query or the context;
- repetition: more than 20% of its word trigrams repeat an earlier one;
- underexplained: too short (rule 4); verbosity: too long (rule 4);
- language_mixing: it has a common English word (`ENGLISH_WORDS`) that is not in the German
  vocabulary;
- typo: it has an off-vocabulary word (rule 5) other than those English words;
- contradiction, overgeneralization, ambiguity, instruction_ignoring, overconfidence and
  bias_or_harm: always false; no rule here can see them.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from definemed.judges.prompts import MODE_NAMES, render
from definemed.judges.records import completion_record, failed_record

VOCABULARY_FILE = Path(__file__).parents[1] / "miniature" / "fixture_text.yaml"
# the judge's name in verdicts, winrate.json, counts.json, Figures 2 and 3 and the report
RULES_SUMMARY = "reference answer, turn ended, repetition, length, off-vocabulary words"

REFERENCE_POINTS = 3.0
ENDED_POINTS = 1.0
REPETITION_POINTS = 2.0
LENGTH_POINTS = 1.0
OFF_VOCABULARY_POINTS = 2.0
MIN_WORDS = 3
LONG_FACTOR, LONG_MIN_WORDS, LONG_WORDS_WITHOUT_REFERENCE = 4, 20, 200
NGRAM = 3
REPETITION_MODE_SHARE = 0.2

# German articles, pronouns, prepositions, conjunctions, auxiliaries and particles.
# fmt: off
FUNCTION_WORDS = frozenset("""
der die das des dem den ein eine einer eines einem einen kein keine keiner keines keinem keinen
ich du er sie es wir ihr ihm ihn ihnen mich mir dich dir uns euch sich man
mein meine dein deine sein seine seiner seines seinem seinen ihre ihrer ihres ihrem ihren unser unsere
dieser diese dieses diesem diesen jener jene welcher welche welches welchem welchen wer wen wem wessen was
in im ins an am ans auf aus bei beim mit nach von vom vor zu zum zur über unter um durch für gegen ohne
zwischen hinter neben bis seit während wegen trotz als wie ob dass weil wenn denn doch aber oder und sondern
sowie bzw auch noch nur schon sehr so nicht nie ja nein etwa eher meist oft
ist sind war waren wird werden wurde wurden sein bin bist hat haben hatte hatten kann können muss müssen
soll sollen sollte darf dürfen wo wann warum wieso womit wodurch worauf wobei hier dort da dabei dazu
daher damit davon dann also zudem jedoch sowohl weder
""".split())
# Common English words (language mixing): the ones in the German vocabulary ("in", "was", "will",
# "die", "also", ...) are left out when the judge compares.
ENGLISH_WORDS = frozenset("""
the and of to is are was were be been being with for that this these those it its not by from or on
at which what who whom whose has have had can could should would will may might must there their they
them he she his her we our you your an as if then than because about into over under after before
answer question patient disease treatment
""".split())
# fmt: on

_WORD = re.compile(r"[^\W_]+")
_ENDED = re.compile(r"(?:[.!?]|…)[\"'»«“”„’)\]]*\s*$")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)
    elif isinstance(node, dict):
        for v in node.values():
            yield from _strings(v)


@functools.lru_cache(maxsize=1)
def german_vocabulary() -> frozenset:
    """Every word of the fixture text's German strings (the ids `area` and `topic` left out)."""
    with open(VOCABULARY_FILE, encoding="utf-8") as f:
        data = yaml.safe_load(f)
    texts = list(_strings(data["slots"]))
    for topic in data["topics"].values():
        texts += [topic["style"], *topic["titles"], *topic["sentences"]]
    for fact in data["medical_facts"]:
        texts += [fact["question"], fact["answer"], *fact["distractors"], *fact["statements"]]
    return frozenset(w for t in texts for w in words(t))


@functools.lru_cache(maxsize=1)
def rubric_digest() -> str:
    """The rules' identity: this file and the vocabulary's source (part of every cache key)."""
    h = hashlib.sha256(Path(__file__).read_bytes())
    h.update(VOCABULARY_FILE.read_bytes())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class Score:
    """A response's findings under the rules and its points per rule."""

    reference_words: tuple[str, ...]
    reference_found: tuple[str, ...]
    ended: bool
    repeated_share: float
    n_words: int
    too_short: bool
    too_long: bool
    off_vocabulary: tuple[str, ...]
    english: tuple[str, ...]
    unsupported: tuple[str, ...]  # content words in neither the context nor the query
    on_topic: bool  # some content word is in the query or the context

    @property
    def reference_share(self) -> float | None:
        return len(self.reference_found) / len(self.reference_words) if self.reference_words else None

    @property
    def off_vocabulary_share(self) -> float:
        return len(self.off_vocabulary) / self.n_words if self.n_words else 0.0

    @property
    def points(self) -> dict[str, float]:
        return {
            "reference answer": round(REFERENCE_POINTS * (self.reference_share or 0.0), 4),
            "turn ended": ENDED_POINTS if self.ended else 0.0,
            "repetition": round(-REPETITION_POINTS * self.repeated_share, 4),
            "length": -LENGTH_POINTS if (self.too_short or self.too_long) else 0.0,
            "off-vocabulary words": round(-OFF_VOCABULARY_POINTS * self.off_vocabulary_share, 4),
        }

    @property
    def total(self) -> float:
        return round(sum(self.points.values()), 4)

    def describe(self, rule: str) -> str:
        if rule == "reference answer":
            return f"{len(self.reference_found)}/{len(self.reference_words)} of its key words"
        if rule == "turn ended":
            return "ends a sentence" if self.ended else "stops mid-sentence"
        if rule == "repetition":
            return f"{100 * self.repeated_share:.0f}% repeated trigrams"
        if rule == "length":
            return f"{self.n_words} words" + (
                ", too short" if self.too_short else ", too long" if self.too_long else ""
            )
        return f"{len(self.off_vocabulary)}/{self.n_words} words off-vocabulary"

    def failure_modes(self) -> dict[str, bool]:
        missing = self.reference_words and len(self.reference_found) < len(self.reference_words)
        off = set(self.off_vocabulary)
        modes = {m: False for m in MODE_NAMES}
        modes.update(
            omission=bool(missing) or not self.ended,
            hallucination=bool(missing) and bool(self.unsupported),
            irrelevance=not self.on_topic,
            repetition=self.repeated_share > REPETITION_MODE_SHARE,
            underexplained=self.too_short,
            verbosity=self.too_long,
            language_mixing=bool(self.english),
            typo=bool(off - set(self.english)),
        )
        return modes


def repeated_share(tokens: list[str], n: int = NGRAM) -> float:
    """The share of the word n-grams that repeat an earlier one (0 without two n-grams)."""
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    if len(grams) < 2:
        return 0.0
    return 1 - len(set(grams)) / len(grams)


def score(context: str, query: str, response: str) -> Score:
    """The rules applied to one response (see the module docstring)."""
    ctx, qry, resp = words(context), words(query), words(response)
    qset, cset, rset = set(qry), set(ctx), set(resp)
    reference = tuple(dict.fromkeys(w for w in ctx if w not in qset and w not in FUNCTION_WORDS))
    m = len(ctx)
    too_short = len(resp) < max(MIN_WORDS, math.ceil(m / 2))
    too_long = len(resp) > (max(LONG_FACTOR * m, LONG_MIN_WORDS) if m else LONG_WORDS_WITHOUT_REFERENCE)
    german = german_vocabulary()
    known = (german, cset, qset, FUNCTION_WORDS)
    off = tuple(w for w in resp if not any(w in k for k in known) and not any(c.isdigit() for c in w))
    english = tuple(w for w in resp if w in ENGLISH_WORDS and w not in german and w not in FUNCTION_WORDS)
    content = [w for w in dict.fromkeys(resp) if w not in FUNCTION_WORDS]
    return Score(
        reference_words=reference,
        reference_found=tuple(w for w in reference if w in rset),
        ended=bool(_ENDED.search(response)),
        repeated_share=round(repeated_share(resp), 4),
        n_words=len(resp),
        too_short=too_short,
        too_long=too_long,
        off_vocabulary=off,
        english=english,
        unsupported=tuple(w for w in content if w not in cset and w not in qset),
        on_topic=not content or any(w in cset or w in qset for w in content),
    )


def pairwise_verdict(context: str, query: str, response_a: str, response_b: str) -> dict:
    """The A.7.2 answer: {"reasoning", "winner"} with winner "A", "B" or "0" (a tie)."""
    a, b = score(context, query, response_a), score(context, query, response_b)
    pa, pb = a.points, b.points
    differ = sorted((r for r in pa if pa[r] != pb[r]), key=lambda r: (-abs(pa[r] - pb[r]), r))
    why = "; ".join(f"{r} (A {a.describe(r)}, B {b.describe(r)})" for r in differ)
    if a.total == b.total:
        winner = "0"
        reasoning = f"Rubric: tie, A {a.total:.2f} = B {b.total:.2f}; " + (
            f"the rules that differ balance out: {why}." if differ else "no rule separates them."
        )
    else:
        winner = "A" if a.total > b.total else "B"
        reasoning = f"Rubric: {winner} wins, A {a.total:.2f} vs B {b.total:.2f}; decided by {why}."
    return {"reasoning": reasoning, "winner": winner}


def failure_modes(context: str, query: str, response: str) -> dict:
    """The A.7.3 answer: the 14 failure modes by the stated mapping (module docstring)."""
    return score(context, query, response).failure_modes()


# -- the prompt, read back ---------------------------------------------------------------------
PROMPT_FIELDS = {
    "pairwise_verdict": ("pairwise", ("context", "query", "response_a", "response_b")),
    "failure_modes": ("failure_modes", ("context", "query", "response")),
}


@functools.cache
def _patterns(kind: str, fields: tuple[str, ...]) -> tuple[re.Pattern, re.Pattern]:
    marks = {f: f"\x00{f}\x00" for f in fields}
    parts = re.split("\x00(\\w+)\x00", render(f"{kind}.user", **marks))
    lazy, greedy = "", ""
    for i, part in enumerate(parts):
        if i % 2:
            lazy += f"(?P<{part}>.*?)"
            greedy += f"(?P<{part}>.*)"
        else:
            lazy += re.escape(part)
            greedy += re.escape(part)
    return re.compile(lazy, re.S), re.compile(greedy, re.S)


def prompt_fields(schema_name: str, messages: list[dict]) -> dict[str, str]:
    """The values rendered into a judge prompt (context, query, responses), read back from its user
    turn. ValueError for another kind of request, or a prompt that does not parse one way only (a
    response that itself contains the prompt's separators)."""
    if schema_name not in PROMPT_FIELDS:
        raise ValueError(f"the rubric judge answers pairwise and failure-mode requests, not {schema_name!r}")
    kind, fields = PROMPT_FIELDS[schema_name]
    user = [m["content"] for m in messages if m["role"] == "user"]
    lazy, greedy = _patterns(kind, fields)
    found = [p.fullmatch(user[-1]) if user else None for p in (lazy, greedy)]
    if not all(found):
        raise ValueError(f"the user turn is not an A.7 {kind} prompt")
    if found[0].groupdict() != found[1].groupdict():
        raise ValueError(f"the {kind} prompt parses more than one way (a field contains its separators)")
    return found[0].groupdict()


class RubricJudge:
    """Answers request bodies by the rules: the same records as the other backends."""

    def complete(self, bodies: dict[str, dict]):
        for key, body in bodies.items():
            try:
                name = body["response_format"]["json_schema"]["name"]
                f = prompt_fields(name, body["messages"])
            except ValueError as e:
                yield key, failed_record(f"rubric: {e}", 1)
                continue
            if name == "pairwise_verdict":
                answer = pairwise_verdict(f["context"], f["query"], f["response_a"], f["response_b"])
            else:
                answer = failure_modes(f["context"], f["query"], f["response"])
            completion = {
                "model": body["model"],
                "choices": [{"message": {"content": json.dumps(answer, ensure_ascii=False)}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0},
            }
            yield key, completion_record(completion, 1, 0.0)
