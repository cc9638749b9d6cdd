"""For tests/workflow/test_chaos.py: with this folder on PYTHONPATH and
DEFINEMED_CHAOS_JUDGE_STALL_AFTER=k in the environment, the judge script
(scripts/judge_failure_modes.py) stalls for good once k answers are committed to its cache, writing
its pid to DEFINEMED_CHAOS_JUDGE_STALLED. The rubric judge answers 60 requests in a second; stalled
after k answers, the job can only end by the test's kill, mid-job however fast the machine, as
tests/support/harnesses/stall_callback.py does for the CPT. Every other Python process (Snakemake
itself, other jobs) is left alone.
"""

import os
import sys

_AFTER = os.environ.get("DEFINEMED_CHAOS_JUDGE_STALL_AFTER")
if _AFTER and sys.argv and sys.argv[0].endswith("judge_failure_modes.py"):
    import time
    from pathlib import Path

    import definemed.judges.client as _judge_client

    _put = _judge_client.ResponseCache.put
    _done = [0]

    def _put_then_stall(self, key, record):
        _put(self, key, record)  # committed: the answer is in the cache
        _done[0] += 1
        if _done[0] >= int(_AFTER):
            Path(os.environ["DEFINEMED_CHAOS_JUDGE_STALLED"]).write_text(f"{os.getpid()}\n")
            while True:
                time.sleep(60)

    _judge_client.ResponseCache.put = _put_then_stall
