"""Fine-tuning pretrained models: Hugging Face bases behind lunalm's model interface (``adapter``), base
checks, LoRA and quantised loading (``base``), and instruction data with the prompt masked
(``instructions``). The training itself is lunalm's one loop (``lunalm.train``)."""
