"""The paper's data pipeline, Keras training, the plaintext reference network and the encrypted forward pass."""
