"""The draw-a-digit page and the JSON prediction API behind ``lenet5 serve``.

``service`` turns one uploaded image into what the API returns (prediction, the 28x28 input
and the conv1 feature maps), ``uploads`` reads a request body within its limits, and ``app``
wires both into a FastAPI application. The page itself lives in ``static/``.
"""
