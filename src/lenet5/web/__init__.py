"""The draw-a-digit page and the JSON prediction API behind ``lenet5 serve``.

``service`` turns one uploaded image into what the API returns (prediction, the 28x28 input
and the conv1 feature maps), ``uploads`` reads a request body within its limits, ``schemas``
describes the JSON, and ``app`` wires them into a FastAPI application. The page itself (HTML,
JavaScript, CSS, no external assets) lives in ``static/``.
"""
