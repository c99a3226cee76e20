"""Batch execution: resume after a kill, failures, lazy stacks, Dask workers, reports."""

import os
import signal
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile

from atomscope.batch import expand_inputs, run_batch
from atomscope.errors import MissingFileError, ParameterError

PLUGIN = "tests._batch_plugin:stats"
ROOT = Path(__file__).resolve().parents[1]


def _frames(folder: Path, n: int, shape=(32, 32)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        np.save(
            folder / f"frame{i}.npy",
            np.full(shape, float(i), np.float32)
            + np.arange(shape[1], dtype=np.float32)[None, :] % 3,
        )
    return folder


def test_inputs_expand_files_folders_globs_and_stacks(tmp_path):
    _frames(tmp_path / "a", 3)
    tifffile.imwrite(
        tmp_path / "stack.tif", np.zeros((4, 16, 16), np.uint16), photometric="minisblack"
    )
    tasks = expand_inputs([tmp_path / "a", str(tmp_path / "*.tif")])
    assert [t.key for t in tasks] == [
        "frame0",
        "frame1",
        "frame2",
        "stack_f00000",
        "stack_f00001",
        "stack_f00002",
        "stack_f00003",
    ]
    assert tasks[4].frame == 1
    assert len(expand_inputs([tmp_path / "stack.tif"], frames=slice(1, 3))) == 2
    with pytest.raises(MissingFileError):
        expand_inputs([str(tmp_path / "none*.tif")])


def test_batch_writes_per_input_folders_combined_outputs_and_resumes(tmp_path):
    _frames(tmp_path / "in", 5)
    s = run_batch(PLUGIN, [tmp_path / "in"], tmp_path / "out", show_progress=False)
    assert (s.done, s.failed, s.skipped) == (5, 0, 0)
    combined = pd.read_parquet(tmp_path / "out" / "combined.parquet")
    assert list(combined.key) == [f"frame{i}" for i in range(5)]
    assert (tmp_path / "out" / "combined.csv").exists()
    import zarr

    labels = zarr.open_array(str(tmp_path / "out" / "labels.zarr"), mode="r")
    assert labels.shape == (5, 32, 32)
    again = run_batch(PLUGIN, [tmp_path / "in"], tmp_path / "out", show_progress=False)
    assert (again.done, again.skipped) == (0, 5)


def test_a_failing_input_is_recorded_and_does_not_stop_the_others(tmp_path):
    _frames(tmp_path / "in", 4)
    s = run_batch(
        PLUGIN,
        [tmp_path / "in"],
        tmp_path / "out",
        show_progress=False,
        options={"fail_value": 2.0},
    )
    assert s.done == 3 and s.failed == 1
    fails = pd.read_csv(tmp_path / "out" / "failures.csv")
    assert "refusing an image" in fails.error[0]
    assert not (tmp_path / "out" / "frame1").exists()  # mean 2.0: the refused one


def test_other_options_in_the_same_folder_are_refused(tmp_path):
    _frames(tmp_path / "in", 2)
    run_batch(PLUGIN, [tmp_path / "in"], tmp_path / "out", show_progress=False)
    with pytest.raises(ParameterError, match="other options"):
        run_batch(
            PLUGIN,
            [tmp_path / "in"],
            tmp_path / "out",
            show_progress=False,
            options={"delay": 0.01},
        )


def _cli(args, env=None, **kw):
    return subprocess.Popen(
        [sys.executable, "-m", "atomscope.cli", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kw,
    )


def test_killed_batch_resumes_to_exactly_the_uninterrupted_outputs(tmp_path):
    _frames(tmp_path / "in", 12)
    args = ["batch", PLUGIN, str(tmp_path / "in"), "--no-progress", "--delay", "0.3"]
    reference = _cli([*args, "-o", str(tmp_path / "ref")])
    assert reference.wait(timeout=300) == 0
    victim = _cli([*args, "-o", str(tmp_path / "out")])
    done = tmp_path / "out" / ".done"
    deadline = time.time() + 120
    while time.time() < deadline and (not done.exists() or len(list(done.iterdir())) < 4):
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=60)
    finished = len(list(done.iterdir()))
    assert 4 <= finished < 12
    resumed = _cli([*args, "-o", str(tmp_path / "out")])
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err.decode()
    assert "skipped" in out.decode()
    for name in ("combined.csv",):
        assert (tmp_path / "ref" / name).read_bytes() == (tmp_path / "out" / name).read_bytes()
    ref = pd.read_parquet(tmp_path / "ref" / "combined.parquet")
    got = pd.read_parquet(tmp_path / "out" / "combined.parquet")
    pd.testing.assert_frame_equal(ref, got)
    # no temporary leftovers under final names
    assert not any(
        p.name.startswith(".") and p.suffix == ".tmp" for p in (tmp_path / "out").iterdir()
    )


def test_stack_larger_than_the_memory_budget_is_not_loaded_whole(tmp_path):
    # 160 MiB of frames, processed in a process whose memory is capped well below that
    n, h, w = 160, 512, 512
    stack = tifffile.memmap(tmp_path / "big.tif", shape=(n, h, w), dtype=np.float32)
    for i in range(n):
        stack[i] = i
    stack.flush()
    del stack
    code = (
        "import resource, sys\n"
        "from atomscope.batch import run_batch\n"
        "s = run_batch('tests._batch_plugin:stats', [sys.argv[1]], sys.argv[2],\n"
        "              show_progress=False, reports=False, frames=slice(0, 40))\n"
        "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
        "print(s.done, s.failed, int(peak))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "big.tif"), str(tmp_path / "out")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    done, failed, peak_mib = map(int, proc.stdout.split())
    assert (done, failed) == (40, 0)
    baseline = subprocess.run(
        [
            sys.executable,
            "-c",
            "import resource, atomscope.batch, pandas, tifffile, zarr;"
            "print(int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024))",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    base_mib = int(baseline.stdout)
    # the whole stack is 160 MiB: the batch stays far below loading it
    assert peak_mib - base_mib < 80, (peak_mib, base_mib)


def test_dask_workers_give_the_same_combined_table(tmp_path):
    _frames(tmp_path / "in", 6)
    one = run_batch(PLUGIN, [tmp_path / "in"], tmp_path / "one", show_progress=False, reports=False)
    two = run_batch(
        PLUGIN, [tmp_path / "in"], tmp_path / "two", workers=2, show_progress=False, reports=False
    )
    assert one.done == two.done == 6
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "one" / "combined.parquet"),
        pd.read_parquet(tmp_path / "two" / "combined.parquet"),
    )


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images = []
        self.stack = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs)["src"])


def _check_html(path: Path) -> int:
    import base64
    import io

    import matplotlib.image as mpimg

    text = path.read_text()
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    parser = _Collector()
    parser.feed(text)
    for src in parser.images:
        assert src.startswith("data:image/png;base64,")
        img = mpimg.imread(io.BytesIO(base64.b64decode(src.split(",", 1)[1])), format="png")
        assert img.ndim == 3 and img.shape[0] > 10
    assert "http://" not in text and "https://" not in text
    return len(parser.images)


def test_reports_are_self_contained_and_every_image_decodes(tmp_path):
    _frames(tmp_path / "in", 3)
    run_batch(PLUGIN, [tmp_path / "in"], tmp_path / "out", show_progress=False)
    assert _check_html(tmp_path / "out" / "report.html") >= 1
    assert _check_html(tmp_path / "out" / "frame0" / "report.html") >= 1


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="Chromium not installed")
def test_report_renders_in_headless_chromium(tmp_path):
    _frames(tmp_path / "in", 2)
    run_batch(PLUGIN, [tmp_path / "in"], tmp_path / "out", show_progress=False)
    shot = tmp_path / "shot.png"
    proc = subprocess.run(
        [
            "/usr/bin/chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1000,1400",
            (tmp_path / "out" / "report.html").as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shot.exists() and shot.stat().st_size > 10_000, proc.stderr
