"""HF_TOKEN never reaches a log or output: the scripts that download from the Hub, run against a
loopback Hub (tests/support/servers/hub_server.py, HF_ENDPOINT) with a canary token and
huggingface_hub's debug logging, once where the downloads succeed and once where the server refuses
them with an error that quotes the token. The server must have seen the token (it was in play); no
file written, no log and no cache holds it."""

import hashlib
import io
import json
import os
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
from conftest import REPO

from definemed.dataset.fineweb import SCHEMA
from tests.support.servers.hub_server import HubServer

CANARY = "hf_canary9d2e7b4a1c6f8e0b3d5a7c9e1f-DO-NOT-LEAK"


def shard_bytes() -> bytes:
    rows = {f.name: [] for f in SCHEMA}
    for i in range(3):
        for f, v in zip(SCHEMA.names, (f"Text {i}", f"id{i}", "CC", "u", "d", "f", "deu", 0.9, "Latn", 1, "{}")):
            rows[f].append(v)
    buf = io.BytesIO()
    pq.write_table(pa.table(rows, schema=SCHEMA), buf)
    return buf.getvalue()


def commands(tmp, repo_prefix: str, shard: bytes) -> dict[str, list[str]]:
    manifest = tmp / f"{repo_prefix}manifest.tsv"
    sha = hashlib.sha256(shard).hexdigest()
    manifest.write_text(f"shard\tpath\tsize\tsha256\ns0\tdata/deu_Latn/train/000_00000.parquet\t{len(shard)}\t{sha}\n")
    out = tmp / f"{repo_prefix}out"
    return {
        "fetch_model": ["fetch_model.py", "--name", "tiny", "--repo", f"{repo_prefix}org/tiny", "--revision", "main"]
        + ["--out", str(out / "models" / "tiny")],
        "fetch_medalpaca": ["fetch_medalpaca.py", "--repo", f"{repo_prefix}medalpaca/sub", "--revision", "main"]
        + ["--file", "sub.json", "--out", str(out / "medalpaca.jsonl")],
        "download_fineweb_shard": ["download_fineweb_shard.py", "--manifest", str(manifest), "--shard", "s0"]
        + ["--repo", f"{repo_prefix}HuggingFaceFW/fineweb-2", "--revision", "main", "--out", str(out / "s0.parquet")],
        "sample_medqa": ["sample_medqa.py", "--repo", f"{repo_prefix}GBaker/medqa", "--revision", "main"]
        + ["--sample", "1", "--seed", "0", "--out", str(out / "medqa.jsonl")],
    }


def test_hf_token_canary_in_no_log_output_or_cache(tmp_path):
    shard = shard_bytes()
    models = {"org/tiny": {"config.json": b'{"model_type": "qwen2"}', "model.safetensors": b"\0" * 64}}
    datasets = {
        "medalpaca/sub": {"sub.json": json.dumps([{"input": "Was ist Fieber?", "output": "Hitze."}]).encode()},
        "HuggingFaceFW/fineweb-2": {"data/deu_Latn/train/000_00000.parquet": shard},
    }
    refused = [("model", "refused-org/tiny"), ("dataset", "refused-medalpaca/sub"),
               ("dataset", "refused-HuggingFaceFW/fineweb-2"), ("dataset", "refused-GBaker/medqa")]  # fmt: skip
    env = dict(os.environ, HF_TOKEN=CANARY, HF_HOME=str(tmp_path / "hf_home"), HF_HUB_VERBOSITY="debug")
    env.pop("HF_HUB_OFFLINE", None)
    for name in ("HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        env.pop(name, None)
    results = {}
    with HubServer(models, datasets, refuse=refused) as hub:
        env["HF_ENDPOINT"] = hub.url
        for prefix in ("", "refused-"):
            for name, args in commands(tmp_path, prefix, shard).items():
                log = tmp_path / "logs" / f"{prefix}{name}.log"
                log.parent.mkdir(exist_ok=True)
                with open(log, "w") as f:  # as a rule's `> {log} 2>&1`
                    cmd = [sys.executable, str(REPO / "scripts" / args[0]), *args[1:]]
                    rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=tmp_path, timeout=300)
                results[prefix + name] = (rc.returncode, log.read_text())
        seen = list(hub.authorization)
    assert f"Bearer {CANARY}" in seen  # the token was sent, so it was there to leak
    for name in ("fetch_model", "fetch_medalpaca", "download_fineweb_shard"):  # downloads that succeed
        assert results[name][0] == 0, results[name][1][-3000:]
    assert (tmp_path / "out" / "s0.parquet").exists() and (
        tmp_path / "out" / "models" / "tiny" / "config.json"
    ).exists()
    for name in ("fetch_model", "fetch_medalpaca", "download_fineweb_shard", "sample_medqa"):
        rc, text = results["refused-" + name]
        assert rc != 0 and "403" in text, text[-3000:]  # the refusal (with the token quoted) reached the script
        if name != "sample_medqa":  # datasets keeps the server's message out of its own error
            assert "the token Bearer <HF_TOKEN> is not authorised" in text, text[-3000:]  # quoted, then scrubbed
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) > 10
    for p in files:
        data = p.read_bytes()
        assert CANARY.encode() not in data and CANARY[:16].encode() not in data, p
