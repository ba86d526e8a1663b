"""tf2pt: convert TensorFlow/Keras RoBERTa- and BERT-family checkpoints to PyTorch."""

__version__ = "0.1.0"
