"""`luna report`: the learnings report from registry rows — counts, fixes, ranges, best runs, charts."""

from __future__ import annotations

import time

from lunalm.runs.registry import Registry
from tests.conftest import run_luna


def fill(registry: Registry) -> None:
    now = time.time()
    successes = [(1e-3, 16, 2.31, 1_450_000), (3e-3, 32, 2.12, 9_700_000), (6e-4, 8, 2.05, 48_000_000)]
    for i, (lr, batch, loss, params) in enumerate(successes):
        registry.upsert(f"lunalm:ok{i}", source="lunalm", name=f"ok{i}", status="completed", outcome="success",
                        model="tiny", optimizer="AdamW", lr=lr, batch_size=batch, device="CPU", started=now - i,
                        best_val_loss=loss, best_val_bpb=loss / 3, n_params=params, tokens_seen=10_000_000 * (i + 1))
    for i, (kind, lr) in enumerate((("cuda-oom", 3e-4), ("cuda-oom", 1e-4), ("nan-loss", 1e-2))):
        registry.upsert(f"log:bad{i}", source="log", path=f"/exp/bad{i}.log", status=None, outcome="failure",
                        model="gpt2", optimizer="adamw_torch", lr=lr, batch_size=64, error_kind=kind,
                        error_message="torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"
                        if kind == "cuda-oom" else "loss is nan at step 120", started=now - 100 - i)
    registry.upsert("script:x", source="script", path="/exp/train.py", outcome="unknown", lr=5e-4, started=now - 200)
    registry.record_scan(["/exp"], files_seen=12, bytes_read=3_400_000, attempts=4, new=4, skipped=1)


def test_report_counts_fixes_ranges_best_runs_and_charts(tmp_path):
    registry = Registry(tmp_path / "runs" / "registry.sqlite")
    fill(registry)
    out = tmp_path / "rep" / "report.md"
    proc = run_luna("report", "--runs-dir", str(tmp_path / "runs"), "--out", str(out), "--html")
    assert proc.returncode == 0, proc.stderr
    text = out.read_text(encoding="utf-8")
    assert "7 training attempts on record, 12 files (3.4 MB) read by `luna scan`" in text
    assert "**3 success**, **3 failure**, **1 unknown**" in text
    assert "| cuda-oom | 2 | Halve the micro-batch" in text and "| nan-loss | 1 |" in text
    assert "| learning rate | 6.00e-04 – 1.00e-03 – 3.00e-03 (3) | 1.00e-04 – 3.00e-04 – 1.00e-02 (3) |" in text
    best = text.split("## Best configurations")[1]
    assert best.index("| ok2 |") < best.index("| ok1 |") < best.index("| ok0 |")  # by validation loss
    for chart in ("outcomes.png", "learning_rates.png", "loss_scaling.png"):
        assert f"]({chart})" in text and (out.parent / chart).read_bytes()[:4] == b"\x89PNG"
    page = (out.parent / "report.html").read_text(encoding="utf-8")
    assert "<table>" in page and "outcomes.png" in page


def test_report_without_a_registry_says_how_to_get_one(tmp_path):
    proc = run_luna("report", "--runs-dir", str(tmp_path / "nothing"), "--out", str(tmp_path / "r.md"))
    assert proc.returncode == 2 and "luna scan DIR" in proc.stderr
    assert not (tmp_path / "r.md").exists()


OOM_LOG = """step 0: train loss 10.9812, val loss 10.9790
iter 0: loss 10.9800, time 512.33ms
iter 10: loss 9.1210, time 480.10ms
Traceback (most recent call last):
  File "train.py", line 300, in <module>
    loss.backward()
torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.50 GiB. GPU 0 has a total capacity of 3.81 GiB
"""


def test_scan_then_runs_and_report_from_the_command_line(tmp_path):
    tree = tmp_path / "old"
    (tree / "exp1").mkdir(parents=True)
    (tree / "exp1" / "train.log").write_text(OOM_LOG, encoding="utf-8")
    registry = str(tmp_path / "reg.sqlite")
    first = run_luna("scan", str(tree), "--registry", registry, "--quiet")
    assert first.returncode == 0, first.stderr
    assert "1 training attempts (1 new)" in first.stdout and "1 failure" in first.stdout
    second = run_luna("scan", str(tree), "--registry", registry, "--quiet")
    assert "1 training attempts (0 new)" in second.stdout  # rescans never duplicate
    listed = run_luna("runs", "list", "--registry", registry, "--outcome", "failure", "--json")
    rows = __import__("json").loads(listed.stdout)
    assert len(rows) == 1 and rows[0]["error_kind"] == "cuda-oom"
    shown = run_luna("runs", "show", rows[0]["id"], "--registry", registry)
    assert "fix: Halve the micro-batch" in shown.stdout
    report = run_luna("report", "--registry", registry, "--out", str(tmp_path / "r.md"))
    assert report.returncode == 0 and "| cuda-oom | 1 |" in (tmp_path / "r.md").read_text(encoding="utf-8")
    missing = run_luna("scan", str(tmp_path / "absent"), "--registry", registry)
    assert missing.returncode == 2 and "absent" in missing.stderr


def test_best_configurations_rank_only_within_one_task(tmp_path):
    """A toy classifier (val 0.0) and a DPO run (val 0.3) are not ranked above language models."""
    registry = Registry(tmp_path / "runs" / "registry.sqlite")
    fill(registry)  # three lunalm runs: causal-LM pretraining by their own config
    for name, task, loss in (("toy-cls", "classification", 0.0), ("spam-cls", "classification", 0.08),
                             ("dpo", "preference tuning", 0.3), ("sft", "fine-tuning", 1.7)):
        registry.upsert(f"notebook:{name}", source="notebook", name=name, outcome="success", best_val_loss=loss,
                        extra={"task": task}, started=time.time())
    registry.upsert("log:what", source="log", name="what", outcome="success", best_val_loss=0.01, started=time.time())
    out = tmp_path / "report.md"
    assert run_luna("report", "--runs-dir", str(tmp_path / "runs"), "--out", str(out)).returncode == 0
    best = out.read_text(encoding="utf-8").split("## Best configurations, by task")[1]
    text, *tables = best.split("\n\n| ")
    assert [table.split(":")[0] for table in tables] == ["causal-LM pretraining", "fine-tuning", "classification",
                                                        "preference tuning", "task not known"]
    assert [line.split(":")[0] for line in text.splitlines() if line.startswith("- ")] == [
        "- **causal-LM pretraining**", "- **fine-tuning**", "- **classification**", "- **preference tuning**",
        "- **task not known**"]
    names = [[row.split(" | ")[0].strip("| ") for row in table.splitlines()[2:] if row.startswith("|")]
             for table in tables]
    assert names == [["ok2", "ok1", "ok0"], ["sft"], ["toy-cls", "spam-cls"], ["dpo"], ["what"]]


def test_report_html_is_rendered_not_raw_markdown(tmp_path):
    from html.parser import HTMLParser

    class Page(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tags, self.text, self.stack = [], [], []

        def handle_starttag(self, tag, attrs):
            self.tags.append(tag)

        def handle_data(self, data):
            self.text.append(data)

    registry = Registry(tmp_path / "runs" / "registry.sqlite")
    fill(registry)
    out = tmp_path / "report.md"
    assert run_luna("report", "--runs-dir", str(tmp_path / "runs"), "--out", str(out), "--html").returncode == 0
    page = Page()
    page.feed((tmp_path / "report.html").read_text(encoding="utf-8"))
    text = "".join(page.text)
    assert "**" not in text and "`" not in text and "\n- " not in text  # no Markdown left showing
    assert page.tags.count("li") >= 2 and "ul" in page.tags  # the error examples are a list
    assert page.tags.count("strong") >= 3 and "code" in page.tags  # **3 success** and `luna scan`
    assert "3 success" in text and "luna scan" in text
