"""lunalm: turn your own text corpus into a good small language model.

The package is a pipeline (see DESIGN.md): corpus -> tokenizer -> token shards -> batches -> model ->
training loop -> checkpoints / registry. Importing ``lunalm`` stays cheap: heavy libraries (torch,
tokenizers, numpy) are imported inside the functions that need them.
"""

__version__ = "0.1.0"
