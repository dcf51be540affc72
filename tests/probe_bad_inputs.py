"""The broad bad-input probe: ~180 things a new user (or an adversary) might do, run and counted.

Run it as a script for the table (``.venv/bin/python tests/probe_bad_inputs.py``) or as the
slow test below. Each case says what should happen: ``error`` (one ``lenet5: error:`` line,
exit 2), ``failed`` (per-file error lines, exit 1), ``ok`` (a valid control, exit 0) or an
HTTP status. Anything else -- a traceback, a hang, a silent success, "nan" in the output, an
empty folder left behind -- is counted as a hole.
"""

from __future__ import annotations

import collections
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from bad_inputs import empty_folders, make_workspace, run_cli  # noqa: E402

Q = "{QUICK}"
TRAIN_OPTIONS = [
    "--epochs 0", "--epochs -1", "--batch-size 0", "--batch-size -5", "--lr 0", "--lr -1", "--lr nan", "--lr inf",
    "--momentum -1", "--momentum 1", "--momentum nan", "--optimizer sgd --momentum 0 --nesterov", "--nesterov",
    "--betas 2 2", "--betas -0.1 0.9", "--betas 0.9 1", "--eps -1", "--eps nan", "--weight-decay -1",
    "--weight-decay inf", "--gamma -1", "--gamma 0", "--gamma nan", "--step-size 0", "--threads 0", "--threads -1",
    "--seed -1", "--seed 99999999999999999999", "--seed 4294967296", "--dropout 1", "--dropout -0.5",
    "--dropout nan", "--val-size -1", "--val-size 1000000", "--train-subset 0", "--accumulate 0",
    "--base-batch-size 0", "--patience -1", "--min-delta -1", "--min-delta nan", "--activation swish",
    "--optimizer foo", "--schedule foo", "--pool median", "--normalization unit", "--device cuda",
    "--device tpu", "--epochs abc", "--lr abc", "--batch-size 1.5", "--recipe nope", "--betas 0.9",
    "--no-such-flag", "--name a/b", "--name ..", "--name /tmp/escape", "--name ''", "--name .",
    "--project a-file", "--project a-file/sub", "--resume nowhere", "--resume a-file", "--resume run --epochs 3",
    "--resume run-config-not-json", "--resume run-config-a-list", "--resume run-config-invalid",
    "--resume run-bad-state", "--resume no-weights-run",
]
DATA_DIRS = ["nowhere", "a-file", "data-missing-files", "data-overflow", "data-truncated", "data-bad-magic",
             "data-wrong-shape", "data-float", "data-corrupt-gz", "data-labels-11", "data-count-mismatch",
             "data-empty-train", "fifo.png"]
WEIGHTS = ["nowhere.safetensors", "a-file", "fifo.png", "no-weights-run", "no-images", "empty", "garbage",
           "huge-header", "nan", "no-format", "no-config", "config-not-json", "config-a-list", "unknown-activation",
           "bad-dropout", "epochs-a-string", "no-normalization", "zero-std", "normalization-extra-key",
           "extra-a-list", "wrong-architecture", "relu-config-tanh-weights"]


def weights_path(name: str) -> str:
    known_paths = {"nowhere.safetensors", "a-file", "fifo.png", "no-weights-run", "no-images"}
    return name if name in known_paths else f"{name}.safetensors"


def cli_cases() -> list[tuple[str, str]]:
    cases = [(f"train {Q} {option}", "error") for option in TRAIN_OPTIONS]
    cases += [(f"train {Q} --data-dir {folder}", "error") for folder in DATA_DIRS]
    cases += [(f"train {Q} --data-dir data-flat --normalization zscore", "error"),
              (f"train {Q} --data-dir data-empty-test", "ok"), (f"train {Q}", "ok"), ("train --resume run", "ok")]
    for name in WEIGHTS:
        cases += [(f"eval --weights {weights_path(name)}", "error"),
                  (f"predict digit.png --weights {weights_path(name)}", "error")]
    for name in ("nan", "unknown-activation", "a-file", "fifo.png"):
        cases += [(f"summary --weights {weights_path(name)}", "error"),
                  (f"export {weights_path(name)} --out x.onnx", "error"),
                  (f"inspect --weights {weights_path(name)} --out report", "error"),
                  (f"serve --weights {weights_path(name)} --port 8765", "error")]
    cases += [
        ("eval --weights model.safetensors --data-dir data-empty-test", "error"),
        ("eval --weights model.safetensors --data-dir nowhere", "error"),
        ("eval --weights model.safetensors --data-dir data-overflow", "ok"),  # only the test split is read
        ("eval --weights model.safetensors --out a-file", "error"),
        ("eval --weights model.safetensors --out a-file/sub", "error"),
        ("eval --weights model.safetensors --out eval-out", "ok"),
        ("predict fifo.png --weights model.safetensors", "failed"),
        ("predict no-images --weights model.safetensors", "error"),
        ("predict data-missing-files --weights model.safetensors", "error"),
        ("predict text.png --weights model.safetensors", "failed"),
        ("predict empty.png --weights model.safetensors", "failed"),
        ("predict truncated.png --weights model.safetensors", "failed"),
        ("predict bomb.png --weights model.safetensors", "failed"),
        ("predict blank.png --weights model.safetensors", "failed"),
        ("predict nowhere.png --weights model.safetensors", "failed"),
        ("predict a-file --weights model.safetensors", "failed"),
        ("predict no-images/notes.txt --weights model.safetensors", "failed"),
        ("predict digit.png --weights model.safetensors --top-k 0", "error"),
        ("predict digit.png --weights model.safetensors --top-k -3", "error"),
        ("predict digit.png --weights model.safetensors --batch-size 0", "error"),
        ("predict digit.png --weights model.safetensors --threads 0", "error"),
        ("predict digit.png --weights model.safetensors --threads -1", "error"),
        ("predict digit.png --weights model.safetensors --save-preprocessed a-file", "error"),
        ("predict digit.png --weights model.safetensors --save-preprocessed a-file/sub", "error"),
        ("predict digit.png --weights model.safetensors --format xml", "error"),
        ("predict digit.png --weights model.safetensors --backend onnx", "error"),
        ("predict digit.png --weights model.safetensors", "ok"),
        ("predict images --weights model.safetensors --format json", "ok"),
        ("predict digit.png --weights model.safetensors --save-preprocessed seen", "ok"),
        ("summary --dropout 2", "error"), ("summary --dropout -1", "error"), ("summary --dropout nan", "error"),
        ("summary --activation swish", "error"), ("summary --weights model.safetensors --dropout 0.5", "error"),
        ("summary", "ok"), ("summary --weights model.safetensors --json", "ok"),
        ("serve --weights model.safetensors --max-upload-mb inf", "error"),
        ("serve --weights model.safetensors --max-upload-mb nan", "error"),
        ("serve --weights model.safetensors --max-upload-mb 0", "error"),
        ("serve --weights model.safetensors --max-upload-mb -1", "error"),
        ("serve --weights model.safetensors --max-upload-mb 1e30", "error"),
        ("serve --weights model.safetensors --port 0", "error"),
        ("serve --weights model.safetensors --port 70000", "error"),
        ("serve --weights model.safetensors --threads 0", "error"),
        ("serve --weights model.safetensors --host 'no such host!'", "error"),
        ("export model.safetensors --out a-file/x.onnx", "error"),
        ("export model.safetensors --out no-images", "error"),
        ("export model.safetensors --out exported/model.onnx", "ok"),
        ("inspect --weights model.safetensors --digits 0", "error"),
        ("inspect --weights model.safetensors --image nowhere.png", "error"),
        ("inspect --weights model.safetensors --image text.png", "error"),
        ("inspect --weights model.safetensors --image fifo.png", "error"),
        ("inspect --weights model.safetensors --image blank.png", "error"),
        ("inspect --weights model.safetensors --out a-file", "error"),
        ("data verify --dir nowhere", "error"), ("data verify --dir data", "error"),
        ("data verify --dir a-file", "error"), ("data verify --dataset kmnist", "error"),
        ("data download --dest a-file --mirror http://127.0.0.1:9/", "error"),
        ("data download --dest dl --mirror http://127.0.0.1:9/ --timeout 1", "error"),
        ("data download --dest dl --mirror not-a-url", "error"),
        ("data download --dest dl --mirror http://127.0.0.1:9/ --timeout -1", "error"),
        ("explain nothing", "error"), ("nosuchcommand", "error"), ("", "error"),
        ("compare --grid lr=-1 --epochs 1", "error"), ("compare --grid lr=abc", "error"),
        ("compare --grid nokey=1", "error"), ("compare --grid lr", "error"), ("compare --grid momentum=2", "error"),
        ("compare --grid nesterov=true", "error"), ("compare --grid betas=2", "error"),
        ("compare --grid seed=1,2", "error"), ("compare --grid lr=0.1,0.1", "error"),
        ("compare --grid epochs=0", "error"), ("compare --grid threads=0", "error"),
        ("compare --grid dropout=1.5", "error"), ("compare --grid activation=swish", "error"),
        ("compare optimizer --seeds 0", "error"), ("compare optimizer --workers 0", "error"),
        ("compare nosuchstudy", "error"), ("compare", "error"),
        ("compare --grid lr=0.1 --name ../escape", "error"), ("compare --grid lr=0.1 --name ''", "error"),
        ("compare --grid lr=0.1 --project a-file", "error"), ("compare optimizer --lr -1", "error"),
        ("compare optimizer --gamma nan", "error"),
        (f"train {Q} --threads 100000", "error"), (f"train {Q} --name {'x' * 300}", "error"),
        ("predict digit.png --weights model.safetensors --threads 100000", "error"),
        ("serve --weights model.safetensors --threads 100000", "error"),
        ("inspect --weights model.safetensors --digits 100000 --out rep", "error"),
        ("compare --grid lr=0.1 --storage bogus://x", "error"), ("compare --grid lr=0.1 --workers 100000", "error"),
        ("compare --grid lr=0.1 --threads -1", "error"), ("compare --grid lr=0.1 --seeds 100000", "error"),
        ("predict loop.png --weights model.safetensors", "failed"),
        ("predict digit.png --backend onnx --weights garbage.onnx", "error"),
        ("serve --weights model.safetensors --host ''", "error"), ("data verify --dir fifo.png", "error"),
        (f"train {Q} --optimizer sgd --lr 1e30 --schedule none", "error"),
        ("inspect --weights run-bad-summary --out rep2", "error"), ("inspect --weights run-bad-metrics --out rep3", "error"),
        ("inspect --weights run-summary-a-list --out rep4", "error"),
        (f"train {Q} --val-size 0 --patience 3", "ok"), (f"train {Q} --train-subset 1", "ok"),
    ]
    return cases


def web_cases() -> list[tuple[str, object, dict, int]]:
    """(method path, body, headers, expected status)."""
    png = {"content-type": "image/png"}
    return [
        ("POST /api/predict", "digit.png", png, 200), ("POST /api/predict", b"", png, 400),
        ("POST /api/predict", "text.png", png, 400), ("POST /api/predict", "truncated.png", png, 400),
        ("POST /api/predict", "bomb.png", png, 413), ("POST /api/predict", "blank.png", png, 422),
        ("POST /api/predict", b"x" * (5 * 2**20), png, 413),
        ("POST /api/predict", "digit.png", {"content-type": "application/json"}, 415),
        ("POST /api/predict", "digit.png", {}, 415),
        ("POST /api/predict", b"--x\r\n\r\n--x--", {"content-type": "multipart/form-data; boundary=x"}, 400),
        ("POST /api/predict", b"junk", {"content-type": "multipart/form-data"}, 400),
        ("POST /api/predict", b"junk", {"content-type": "multipart/form-data; boundary="}, 400),
        ("GET /api/predict", None, {}, 405), ("POST /api/model", None, {}, 405), ("GET /nope", None, {}, 404),
        ("GET /static/../pyproject.toml", None, {}, 404), ("GET /healthz", None, {}, 200),
    ]


def run_web(root: Path) -> list[tuple[str, str]]:
    from fastapi.testclient import TestClient

    from lenet5.predict import load
    from lenet5.web.app import create_app

    client = TestClient(create_app(load(root / "model.safetensors")), raise_server_exceptions=False)
    results = []
    for request, body, headers, expected in web_cases():
        method, path = request.split()
        data = (root / body).read_bytes() if isinstance(body, str) else body
        response = client.request(method, path, content=data, headers=headers)
        shown = body if isinstance(body, str) else f"<{len(data or b'')} bytes>"
        label = f"{request} {shown} {headers}"
        ok = response.status_code == expected and "application/json" in response.headers.get("content-type", "")
        outcome = "as expected" if ok else f"HTTP {response.status_code} (wanted {expected})"
        results.append((label, outcome))
    return results


def probe(root: Path) -> list[tuple[str, str]]:
    """Run every case in workspace ``root``; return (case, outcome) where outcome 'as expected' is good."""
    import os

    make_workspace(root)
    os.chdir(root)
    results = []
    for command, expected in cli_cases():
        before = {p for p in root.rglob("*") if p.is_dir()}
        outcome = run_cli(command)
        verdict = "as expected"
        if outcome.kind in ("traceback", "hang"):
            verdict = outcome.kind
        elif outcome.kind != expected:
            verdict = "silent wrong result" if outcome.kind == "ok" else f"{outcome.kind} (wanted {expected})"
        elif "nan%" in outcome.text.lower() or "nan " in outcome.stdout.lower():
            verdict = "silent wrong result (nan)"
        elif expected == "error" and "lenet5: error:" not in outcome.stderr and "error:" not in outcome.stderr:
            verdict = "error without a message"
        if empty_folders(root, before):
            verdict += " + empty folder left"
        results.append((command, verdict))
    results += run_web(root)
    return results


@pytest.mark.slow
def test_the_broad_probe_finds_no_holes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    holes = [(case, outcome) for case, outcome in probe(tmp_path / "ws") if outcome != "as expected"]
    assert holes == []


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        results = probe(Path(folder) / "ws")
    counts = collections.Counter(outcome.split(" (")[0] for _, outcome in results)
    for case, outcome in results:
        if outcome != "as expected":
            print(f"HOLE  {outcome:<40} lenet5 {case}")
    print(f"\n{len(results)} cases")
    for outcome, count in counts.most_common():
        print(f"  {count:>4}  {outcome}")


if __name__ == "__main__":
    main()
