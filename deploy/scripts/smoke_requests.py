"""Requests of the container smoke test: wait for /healthz, then a real digit prediction."""

from __future__ import annotations

import io
import sys
import time

import httpx
from PIL import Image
from sklearn.datasets import load_digits


def main(url: str) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).json() == {"status": "ok"}:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            sys.exit("gateway did not answer /healthz within 120 s")
        time.sleep(1)
    digits = load_digits()
    png = io.BytesIO()
    Image.fromarray((digits.images[0] * 255 / 16).astype("uint8")).save(png, format="PNG")
    response = httpx.post(
        f"{url}/v1/models/digits/predict", files={"file": ("d.png", png.getvalue())}, timeout=30
    )
    response.raise_for_status()
    body = response.json()
    assert body["model"]["name"] == "digits", body
    assert body["prediction"] == str(digits.target[0]), body
    print(f"predict ok: {body['prediction']} ({body['confidence']:.3f})")


if __name__ == "__main__":
    main(sys.argv[1])
