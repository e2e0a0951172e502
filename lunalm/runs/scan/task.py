"""What a training attempt trains for, so that the report compares only comparable runs: a validation loss
of a 2-class classifier, of a DPO policy and of a language model are different numbers.

Decided from names alone (calls, functions, keyword names and values), strongest evidence first.
"""

from __future__ import annotations

PRETRAINING = "causal-LM pretraining"
FINE_TUNING = "fine-tuning"
CLASSIFICATION = "classification"
PREFERENCE = "preference tuning"
TASKS = (PRETRAINING, FINE_TUNING, CLASSIFICATION, PREFERENCE)
FROM_SCRATCH = ("scratch", "resume")  # nanoGPT's init_from values that name no pretrained model

_PREFERENCE_TRAINERS = {"DPOTrainer", "ORPOTrainer", "KTOTrainer", "RewardTrainer", "PPOTrainer", "GRPOTrainer",
                        "CPOTrainer"}
_CLASSIFIER_WORDS = ("SequenceClassification", "TokenClassification", "ImageClassification", "classifier",
                     "Classifier")
_LM_WORDS = ("CausalLM", "LMHead", "GPT", "Llama", "language_model", "LanguageModel")


def task_of(calls: list[str], functions: set[str], values: dict[str, list], pretrained: bool) -> str | None:
    """The task of a script or notebook: ``calls`` are dotted call names, ``functions`` the names it
    defines, ``values`` its named values, ``pretrained`` whether it starts from a named pretrained model."""
    names = [name.rpartition(".")[2] for name in calls] + sorted(functions)
    if any(name in _PREFERENCE_TRAINERS or "dpo" in name.lower() for name in names):
        return PREFERENCE
    if any(word in name for name in [*calls, *functions] for word in _CLASSIFIER_WORDS) \
            or _classifier_values(values):
        return CLASSIFICATION
    if pretrained or "SFTTrainer" in names or "get_peft_model" in names:
        return FINE_TUNING
    if any(word in name for name in calls for word in _LM_WORDS) or "block_size" in values:
        return PRETRAINING
    return None


def with_model(task: str | None, model: str | None) -> str | None:
    """Pretraining or fine-tuning as the model that actually ran says (a config file or the log may have
    changed nanoGPT's ``init_from`` from ``"scratch"`` to ``"gpt2-xl"``, or back)."""
    if task not in (PRETRAINING, FINE_TUNING) or not model:
        return task
    return PRETRAINING if model in FROM_SCRATCH else FINE_TUNING


def task_of_architecture(architectures, from_hub: bool | None) -> str | None:
    """The task of a Hugging Face ``config.json`` (``architectures``; ``from_hub``: a model id was loaded,
    None: not known, and a language model's task is then left open)."""
    names = [name for name in architectures if isinstance(name, str)] if isinstance(architectures, list) else []
    if any(word in name for name in names for word in _CLASSIFIER_WORDS):
        return CLASSIFICATION
    if any(word in name for name in names for word in _LM_WORDS) and from_hub is not None:
        return FINE_TUNING if from_hub else PRETRAINING
    return None


def _classifier_values(values: dict[str, list]) -> bool:
    return any(isinstance(v, int) and v >= 2 for v in values.get("num_labels", []) + values.get("num_classes", [])) \
        or "SEQ_CLS" in values.get("task_type", [])
