"""The prediction API: answers that match the library, every bad input a 4xx, safe under concurrency."""

from __future__ import annotations

import base64
import io
import json
import socket
import subprocess
import sys
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("fastapi")
with warnings.catch_warnings():  # starlette asks for httpx2, which this environment does not have
    warnings.filterwarnings("ignore", message=".*httpx2", category=UserWarning)
    from fastapi.testclient import TestClient  # noqa: E402

from live_server import live_server  # noqa: E402

from lenet5.cli import main  # noqa: E402
from lenet5.config import TrainConfig  # noqa: E402
from lenet5.data.mnist import load_split  # noqa: E402
from lenet5.hooks import capture_activations  # noqa: E402
from lenet5.model import build_model  # noqa: E402
from lenet5.predict import Predictor, load  # noqa: E402
from lenet5.preprocess import Normalization  # noqa: E402
from lenet5.web.app import STATIC, create_app  # noqa: E402
from lenet5.web.service import DigitService, feature_map_colours, png_bytes  # noqa: E402
from lenet5.weights import LoadedModel  # noqa: E402

PNG = {"Content-Type": "image/png"}


@pytest.fixture(scope="module")
def predictor(trained_run: Path) -> Predictor:
    return load(trained_run)


@pytest.fixture(scope="module")
def client(predictor: Predictor) -> Iterator[TestClient]:
    with TestClient(create_app(predictor)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def mnist_pngs() -> list[tuple[bytes, int]]:
    """Twenty MNIST test digits, upscaled to 140x140 PNGs like a small drawing."""
    images, labels = load_split("test")
    return [(encode(Image.fromarray(images[i].numpy()).resize((140, 140))), int(labels[i])) for i in range(20)]


def encode(image: Image.Image, format: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format)
    return buffer.getvalue()


def decode_data_url(url: str) -> np.ndarray:
    prefix = "data:image/png;base64,"
    assert url.startswith(prefix)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url[len(prefix):]))))


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_model_describes_the_served_weights(client: TestClient, trained_run: Path) -> None:
    info = client.get("/api/model").json()
    summary = json.loads((trained_run / "summary.json").read_text())
    config = json.loads((trained_run / "config.json").read_text())
    assert info["parameters"] == summary["parameters"] == 61_706
    assert info["test_accuracy"] == pytest.approx(summary["test_accuracy"])
    assert info["training"]["train_subset"] == config["train_subset"] == 20000
    stages = {stage["stage"]: stage for stage in info["architecture"]}
    assert stages["c1"]["output_shape"] == [6, 28, 28] and stages["s4"]["output_shape"] == [16, 5, 5]
    assert stages["output"]["output_shape"] == [10]
    assert sum(stage["parameters"] for stage in info["architecture"]) == info["parameters"]


def test_predictions_match_the_library_and_mostly_the_labels(client: TestClient, predictor: Predictor,
                                                             mnist_pngs: list[tuple[bytes, int]]) -> None:
    correct = 0
    for png, label in mnist_pngs:
        body = client.post("/api/predict", content=png, headers=PNG).json()
        reference = predictor.predict_one(png)
        assert body["digit"] == reference.digit
        assert body["probabilities"] == pytest.approx(reference.probabilities, abs=1e-6)
        assert sum(body["probabilities"]) == pytest.approx(1.0)
        assert body["probability"] == max(body["probabilities"])
        np.testing.assert_array_equal(decode_data_url(body["image"]), reference.preprocessed)
        correct += body["digit"] == label
    assert correct >= 18  # a ~98% model on 20 clean digits


def test_multipart_and_jpeg_uploads_give_the_same_answer(client: TestClient,
                                                         mnist_pngs: list[tuple[bytes, int]]) -> None:
    png, label = mnist_pngs[0]
    raw = client.post("/api/predict", content=png, headers=PNG).json()
    form = client.post("/api/predict", files={"file": ("seven.png", png, "image/png")}).json()
    assert form == raw
    jpeg = encode(Image.open(io.BytesIO(png)).convert("L"), "JPEG")
    as_jpeg = client.post("/api/predict", content=jpeg, headers={"Content-Type": "image/jpeg"})
    assert as_jpeg.status_code == 200 and as_jpeg.json()["digit"] == label


def test_feature_maps_are_conv1_of_the_input(client: TestClient, predictor: Predictor,
                                             mnist_pngs: list[tuple[bytes, int]]) -> None:
    """Reference: conv1 computed by hand from its weights, tanh applied, coloured the same way."""
    body = client.post("/api/predict", content=mnist_pngs[3][0], headers=PNG).json()
    digit = torch.from_numpy(decode_data_url(body["image"]).copy())[None]
    conv = predictor.loaded.model.c1[0]
    with torch.no_grad():
        expected = torch.tanh(torch.nn.functional.conv2d(predictor.normalization(digit), conv.weight, conv.bias,
                                                         padding=2))[0].numpy()
    colours, scale = feature_map_colours(expected)
    maps = body["feature_maps"]
    assert maps["stage"] == "c1" and len(maps["maps"]) == 6
    assert maps["scale"] == pytest.approx(scale, rel=1e-5)
    got = np.stack([decode_data_url(url) for url in maps["maps"]]).astype(int)
    assert got.shape == (6, 28, 28, 3)
    assert np.abs(got - colours.astype(int)).max() <= 1  # float rounding at the colour boundary


@pytest.mark.parametrize("arch", ["lab", "lenet5-1998"])
def test_the_served_network_matches_pytorch(arch: str, tmp_path: Path) -> None:
    """Reference: the PyTorch model itself, with a forward hook on conv1, for both architectures."""
    config = TrainConfig.from_dict({"model": {"arch": arch}})
    torch.manual_seed(0)
    model = build_model(config.model).eval()
    normalization = Normalization.fit("lecun1998" if arch == "lenet5-1998" else "[-1,1]", torch.zeros(1, 28, 28),
                                      input_size=model.input_size)
    loaded = LoadedModel(model, config, normalization, {}, tmp_path / "untrained.safetensors")
    service = DigitService(Predictor(loaded, normalization=normalization, path=loaded.path), max_pixels=10**6)
    digit = load_split("test")[0][7].numpy()
    logits, maps = service.forward(digit, maps=True)
    with torch.no_grad(), capture_activations(model, ["c1"]) as captured:
        expected = model(normalization(torch.from_numpy(digit[None])))[0].numpy()
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(maps, captured["c1"][0].numpy(), rtol=1e-4, atol=1e-5)
    assert service.forward(digit, maps=False)[1] is None


def test_feature_map_colours_are_diverging_and_shared() -> None:
    maps = np.zeros((2, 1, 3), dtype=np.float32)
    maps[0, 0] = [-2.0, 0.0, 1.0]
    colours, scale = feature_map_colours(maps)
    assert scale == 2.0
    np.testing.assert_array_equal(colours[0, 0, 0], [33, 102, 172])  # the strongest negative: full blue
    np.testing.assert_array_equal(colours[0, 0, 1], [247, 247, 247])  # zero: white
    np.testing.assert_array_equal(colours[1, 0, 0], [247, 247, 247])  # an all-zero map stays white
    assert colours[0, 0, 2, 0] > colours[0, 0, 2, 2]  # positive leans red, half strength


@pytest.mark.parametrize("shape", [(28, 28), (28, 28, 3), (1, 1), (3, 17, 3)])
def test_png_bytes_reads_back_with_pil(shape: tuple[int, ...]) -> None:
    """Reference: PIL's own PNG decoder, strict about checksums and lengths."""
    pixels = np.random.default_rng(len(shape)).integers(0, 256, shape, dtype=np.uint8)
    image = Image.open(io.BytesIO(png_bytes(pixels)))
    image.verify()  # CRCs and chunk structure
    image = Image.open(io.BytesIO(png_bytes(pixels)))
    assert image.mode == ("L" if len(shape) == 2 else "RGB")
    np.testing.assert_array_equal(np.asarray(image), pixels)


def test_feature_map_palette_matches_the_blend_it_replaces() -> None:
    """Reference: each pixel blended from white toward blue or red by its own strength."""
    maps = np.random.default_rng(0).normal(size=(6, 28, 28)).astype(np.float32)
    colours, scale = feature_map_colours(maps)
    t = np.clip(maps / scale, -1, 1)[..., None]
    toward = np.where(t < 0, [33, 102, 172], [178, 24, 43])
    blended = np.round(247 + np.abs(t) * (toward - 247))
    assert np.abs(colours.astype(int) - blended).max() <= 1


def assert_refused(response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    message = response.json()["error"]
    assert isinstance(message, str)
    for word in words:
        assert word in message, message


def test_oversized_uploads_get_413(predictor: Predictor) -> None:
    with TestClient(create_app(predictor, max_upload_bytes=1000)) as small:
        assert_refused(small.post("/api/predict", content=b"\x89PNG" + b"0" * 2000, headers=PNG), 413, "limit")
        big_file = {"file": ("big.png", b"0" * 2000, "image/png")}
        assert_refused(small.post("/api/predict", files=big_file), 413, "limit")


def test_oversized_chunked_upload_is_refused_without_content_length(predictor: Predictor) -> None:
    with TestClient(create_app(predictor, max_upload_bytes=1000)) as small:
        chunks = iter([b"0" * 600, b"0" * 600, b"0" * 600])
        assert_refused(small.post("/api/predict", content=chunks, headers=PNG), 413, "limit")


def test_images_over_the_pixel_cap_get_413(predictor: Predictor) -> None:
    with TestClient(create_app(predictor, max_pixels=100 * 100)) as capped:
        wide = encode(Image.new("L", (101, 100)))
        assert_refused(capped.post("/api/predict", content=wide, headers=PNG), 413, "10,100 pixels", "10,000")
        ok = encode(Image.new("L", (100, 100)))
        assert capped.post("/api/predict", content=ok, headers=PNG).status_code == 422  # within the cap: blank


@pytest.mark.parametrize("content_type", ["text/plain", "application/json", "image/gif", None])
def test_wrong_content_types_get_415(client: TestClient, mnist_pngs, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    assert_refused(client.post("/api/predict", content=mnist_pngs[0][0], headers=headers), 415,
                   "image/png", "multipart/form-data")


@pytest.mark.parametrize("body, words", [
    (b"", ["empty"]),
    (b"definitely not a picture", ["not an image"]),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, ["request body"]),  # a PNG signature, then garbage
])
def test_non_images_get_400(client: TestClient, body: bytes, words: list[str]) -> None:
    assert_refused(client.post("/api/predict", content=body, headers=PNG), 400, *words)


def test_truncated_png_gets_400(client: TestClient, mnist_pngs) -> None:
    png = mnist_pngs[0][0]
    assert_refused(client.post("/api/predict", content=png[: len(png) // 2], headers=PNG), 400, "request body")


def test_empty_canvas_gets_422(client: TestClient) -> None:
    for colour in ("white", "black"):
        blank = encode(Image.new("RGB", (280, 280), colour))
        assert_refused(client.post("/api/predict", content=blank, headers=PNG), 422, "no digit")


def test_forms_without_a_file_get_400(client: TestClient, mnist_pngs) -> None:
    wrong_field = {"image": ("x.png", mnist_pngs[0][0], "image/png")}
    assert_refused(client.post("/api/predict", files=wrong_field), 400, "'file' field")
    as_text = client.post("/api/predict", files={"file": (None, "not a file")})
    assert_refused(as_text, 400, "'file' field")


def test_unknown_routes_and_methods_are_json_4xx(client: TestClient) -> None:
    assert_refused(client.get("/api/nothing"), 404, "Not Found")
    assert_refused(client.get("/api/predict"), 405, "Method Not Allowed")


def test_concurrent_requests_each_get_their_own_answer(predictor: Predictor, mnist_pngs) -> None:
    """Sixteen clients at once: every reply, feature maps included, equals the one-at-a-time reply."""
    import httpx

    app = create_app(predictor)
    with live_server(app) as url, httpx.Client(base_url=url, timeout=60) as http:
        expected = [http.post("/api/predict", content=png, headers=PNG).json() for png, _ in mnist_pngs]
        jobs = [i % len(mnist_pngs) for i in range(120)]

        def ask(i: int) -> dict:
            response = http.post("/api/predict", content=mnist_pngs[i][0], headers=PNG)
            assert response.status_code == 200, response.text
            return response.json()

        with ThreadPoolExecutor(max_workers=16) as pool:
            replies = list(pool.map(ask, jobs))
    for i, reply in zip(jobs, replies):
        assert reply["digit"] == expected[i]["digit"]
        assert reply["feature_maps"] == expected[i]["feature_maps"]
        assert reply["image"] == expected[i]["image"]


def test_load_benchmark_runs_against_a_live_server_with_no_errors(predictor: Predictor) -> None:
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "serve_load.py"
    with live_server(create_app(predictor)) as url:
        result = subprocess.run([sys.executable, str(script), "--url", url, "--clients", "2", "--seconds", "1",
                                 "--images", "5", "--endpoints", "predict", "healthz"],
                                capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:1] == ["endpoint"])
    names = lines[header].replace(" ms", "_ms").split()
    rows = {row["endpoint"]: row for row in (dict(zip(names, line.split())) for line in lines[header + 1:header + 3])}
    assert set(rows) == {"predict", "healthz"}
    for row in rows.values():
        assert row["clients"] == "2" and int(row["requests"]) > 0 and row["errors"] == "0"
    assert "predict at 2 clients:" in result.stdout  # its share of /healthz's req/s


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


@pytest.mark.parametrize("path", ["/", "/docs"])
def test_pages_load_only_local_files(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert "default-src 'self'" in response.headers["content-security-policy"]
    links = _Links()
    links.feed(response.text)
    assert links.urls
    for url in links.urls:
        assert url.startswith(("/", "data:", "#")) and not url.startswith("//"), url
        if url.startswith("/static/"):
            assert client.get(url).status_code == 200, url


def test_static_files_name_no_other_host() -> None:
    for path in STATIC.iterdir():
        text = path.read_text()
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, path.name


def test_openapi_documents_the_api_without_a_cdn(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    predict = schema["paths"]["/api/predict"]["post"]
    assert set(predict["requestBody"]["content"]) == {"image/png", "image/jpeg", "multipart/form-data"}
    assert {"400", "413", "415", "422"} <= set(predict["responses"])
    assert "cdn" not in client.get("/docs").text.lower()


def test_serve_refuses_bad_options_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["serve", "--weights", str(tmp_path / "missing.safetensors")]) == 2
    assert "missing.safetensors: weights file not found" in capsys.readouterr().err
    assert main(["serve", "--port", "70000"]) == 2
    assert "invalid --port 70000" in capsys.readouterr().err


def test_serve_says_when_the_port_is_taken(trained_run: Path, capsys: pytest.CaptureFixture) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--weights", str(trained_run), "--port", str(port)]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
