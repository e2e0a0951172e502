"""Token data: cached token shards on disk (``shards``) and training/eval windows over them (``batches``)."""
