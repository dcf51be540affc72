"""The JSON shapes of the API, as pydantic models: they document /openapi.json and check replies."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    error: str = Field(description="what is wrong with the request, in one sentence")


class FeatureMaps(BaseModel):
    stage: str = Field(description="the layer the maps come from")
    scale: float = Field(description="the |activation| drawn at full colour; all maps share it")
    maps: list[str] = Field(description="one data:image/png URL per channel: blue negative, white 0, red positive")


class PredictBody(BaseModel):
    """The answer to ``POST /api/predict``; ``image`` and ``feature_maps`` are left out with ``maps=0``."""

    digit: int = Field(ge=0, le=9, description="the most likely digit")
    probability: float = Field(description="the predicted digit's probability")
    probabilities: list[float] = Field(min_length=10, max_length=10, description="softmax over digits 0-9")
    image: str | None = Field(None, description="the 28x28 image the model saw, as a data:image/png URL "
                                                 "(absent with maps=0)")
    feature_maps: FeatureMaps | None = Field(None, description="the conv1 outputs for that image (absent with maps=0)")
    notes: list[str] = Field(description="what decoding and preprocessing did to the upload")


class Health(BaseModel):
    status: str = Field(description='"ok" while the server can answer')


class Stage(BaseModel):
    stage: str = Field(description="the attribute name in model.py: c1, s2, c3, s4, flatten, f5, f6, output")
    layers: str = Field(description="the layers inside the stage, as `lenet5 summary` prints them")
    parameters: int = Field(ge=0)
    output_shape: list[int] = Field(description="per image, without the batch dimension")


class ModelInfo(BaseModel):
    name: str
    architecture: list[Stage]
    parameters: int = Field(description="trainable parameters")
    normalization: dict[str, Any] = Field(description="the pixel normalisation the weights were trained with")
    training: dict[str, Any] = Field(description="the TrainConfig that produced the weights")
    test_accuracy: float | None = Field(description="MNIST test accuracy measured after training, if recorded")
    epoch: int | None = Field(description="the epoch whose weights are served, if recorded")
    weights: str = Field(description="the weights file's name")
