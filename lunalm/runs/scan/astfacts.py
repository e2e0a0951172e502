"""Training settings read from Python source with ``ast`` alone: the code is parsed, never run or imported.

What a training script says about its run is spread over three habits, all read here the same way as
(name, value) pairs in source order:

* keyword arguments: ``TrainingArguments(learning_rate=2e-5, per_device_train_batch_size=8)``,
  ``torch.optim.AdamW(params, lr=3e-4)``, ``LoraConfig(r=8, lora_alpha=16)``;
* assignments: nanoGPT-style module constants (``learning_rate = 6e-4``, ``batch_size = 12``), dataclass
  fields (``lr: float = 3e-4``) and ``config.lr = ...``;
* ``argparse`` defaults (``add_argument("--lr", default=3e-4)``) and dict literals (``{"lr": 3e-4}``).

Values are resolved only from literals, arithmetic on literals (with size guards) and names assigned such
values earlier (``Path(anything) / "data.tsv"`` resolves to its last part, ``"data.tsv"``); ``a if cond else b`` resolves to ``a``, the branch the author wrote as the preferred one
(``"cuda" if torch.cuda.is_available() else "cpu"``). Anything else is left unknown rather than guessed.
"""

from __future__ import annotations

import ast
import operator

_MAX_DEPTH = 30  # nested expressions resolved at most this deep
_MAX_STRING = 500
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_TEST_WORDS = ("test_mode", "'test'", "debug", "smoke", "dry_run", "quick")
_TORCH_DTYPES = {"float16", "half", "bfloat16", "float32", "float", "float64"}


def dotted(node: ast.AST) -> str:
    """``torch.optim.AdamW`` for the function of a call; ``Trainer().train`` for chained calls."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Call):
        return f"{dotted(node.func)}()"
    return "?"


def resolve(node: ast.AST | None, constants: dict, depth: int = 0):
    """The value of a literal-ish expression, or None when it depends on anything run-time."""
    if node is None or depth > _MAX_DEPTH:
        return None
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, str):
            return value if len(value) <= _MAX_STRING else None
        return value if isinstance(value, (bool, int, float)) else None
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    if isinstance(node, ast.IfExp):
        return resolve(node.body, constants, depth + 1)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = resolve(node.operand, constants, depth + 1)
        return (-value if isinstance(node.op, ast.USub) else value) if _is_number(value) else None
    if isinstance(node, ast.BinOp):
        return _binary(node, constants, depth)
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)) and len(node.elts) <= 100:
        values = [resolve(element, constants, depth + 1) for element in node.elts]
        return None if any(value is None for value in values) else values
    if isinstance(node, ast.Attribute) and node.attr in _TORCH_DTYPES and dotted(node.value) == "torch":
        return node.attr  # torch.bfloat16 -> "bfloat16"
    return None


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _binary(node: ast.BinOp, constants: dict, depth: int):
    """Arithmetic on numbers (and ``str + str``), refusing what could take long: huge powers and results."""
    left, right = resolve(node.left, constants, depth + 1), resolve(node.right, constants, depth + 1)
    function = _BINARY.get(type(node.op))
    if isinstance(left, str) and isinstance(right, str) and isinstance(node.op, ast.Add):
        joined = left + right
        return joined if len(joined) <= _MAX_STRING else None
    if isinstance(node.op, ast.Div) and isinstance(right, str):  # Path(folder) / "data.tsv": the file's name
        return right
    if function is None or not (_is_number(left) and _is_number(right)):
        return None
    if isinstance(node.op, ast.Pow) and (abs(right) > 64 or abs(left) > 1e6):
        return None
    try:
        value = function(left, right)
    except (ArithmeticError, ValueError):  # division by zero, overflow, complex powers
        return None
    if isinstance(value, int) and abs(value) > 10**30:
        return None
    return value if _is_number(value) else None


def _position(node: ast.AST) -> tuple[int, int]:
    return getattr(node, "lineno", 0), getattr(node, "col_offset", 0)


def collect(tree: ast.Module) -> tuple[list[ast.Call], list[tuple[str, ast.AST, bool]], set[str]]:
    """Calls and (name, value node, is_assignment) triples in source order, and the names of the functions
    the code defines."""
    calls, pairs, functions = [], [], set()
    test_only = _test_only(tree)
    for node in ast.walk(tree):
        if id(node) in test_only:
            continue
        if isinstance(node, ast.Call):
            calls.append(node)
            pairs.extend((_position(node), keyword.arg, keyword.value, False) for keyword in node.keywords
                         if keyword.arg and not _held_out(keyword.value))
            pairs.extend((_position(node), name, value, False) for name, value in _argparse_default(node))
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            pairs.extend((_position(node), name, node.value, isinstance(target, ast.Name))
                         for target in targets if (name := _target_name(target)))
        elif isinstance(node, ast.Dict):
            pairs.extend((_position(node), key.value, value, False) for key, value in zip(node.keys, node.values)
                         if isinstance(key, ast.Constant) and isinstance(key.value, str))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            functions.add(node.name)
    calls.sort(key=_position)
    pairs.sort(key=lambda pair: pair[0])
    return calls, [pair[1:] for pair in pairs], functions


def _test_only(tree: ast.Module) -> set[int]:
    """Ids of the nodes whose settings are not the run's: assignments under ``if args.test_mode:`` /
    ``if DEBUG:`` (a smoke test; the ``else`` branch is kept), and everything inside a function named for
    evaluation (``eval_split``, ``evaluate``, ``test_step``: its DataLoader's batch is not the training one)."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and any(word in ast.dump(node.test).lower() for word in _TEST_WORDS):
            skipped.update(id(inner) for statement in node.body for inner in ast.walk(statement)
                           if isinstance(inner, (ast.Assign, ast.AnnAssign)))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                and any(word in node.name.lower() for word in ("eval", "test", "valid")):
            skipped.update(id(inner) for statement in node.body for inner in ast.walk(statement)
                           if isinstance(inner, (ast.Assign, ast.AnnAssign, ast.Call)))
    return skipped


def _held_out(node: ast.AST) -> bool:
    """``DataLoader(val_set, batch_size=EVAL_BATCH_SIZE)``: a setting of evaluation, not of training."""
    return isinstance(node, ast.Name) and any(word in node.id.lower() for word in ("eval", "test", "valid"))


def _target_name(target: ast.AST) -> str | None:
    if isinstance(target, ast.Name):
        return target.id
    if isinstance(target, ast.Attribute):
        return target.attr  # config.lr = 3e-4
    return None


def _argparse_default(call: ast.Call) -> list[tuple[str, ast.AST]]:
    """``add_argument("--learning-rate", default=3e-4)`` -> [("learning_rate", <3e-4>)]."""
    if not (isinstance(call.func, ast.Attribute) and call.func.attr == "add_argument"):
        return []
    default = next((keyword.value for keyword in call.keywords if keyword.arg == "default"), None)
    flags = [arg.value for arg in call.args if isinstance(arg, ast.Constant) and isinstance(arg.value, str)]
    long_flags = [flag for flag in flags if flag.startswith("--")] or flags
    if default is None or not long_flags:
        return []
    return [(long_flags[0].lstrip("-").replace("-", "_"), default)]


def named_values(pairs: list[tuple[str, ast.AST, bool]]) -> tuple[dict, dict[str, list]]:
    """(constants, values): the first resolvable value assigned to each plain name (later assignments in
    loops and functions are usually run-time values), and every resolved value of every name (keywords,
    assignments, defaults, dict keys) in source order."""
    constants: dict = {}
    values: dict[str, list] = {}
    for name, node, assigned in pairs:
        value = resolve(node, constants)
        if value is None:
            continue
        if assigned:
            constants.setdefault(name, value)
        values.setdefault(name, []).append(value)
    return constants, values
