"""Reading, verifying, downloading and preprocessing MNIST-format data."""
