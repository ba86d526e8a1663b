"""Write: a clean plan carried out — tensors produced by their declared ops and streamed into
safetensors, the output config, all staged in a temporary sibling and published whole."""
