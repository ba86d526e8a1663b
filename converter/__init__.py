"""tf2pt: convert TensorFlow/Keras BERT-family encoder checkpoints (RoBERTa, BERT, ELECTRA, ALBERT,
DistilBERT, … as the tables in mappings/ declare) to PyTorch."""

__version__ = "0.1.0"
