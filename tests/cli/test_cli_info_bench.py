"""``analogsim info`` and ``analogsim bench`` (tiny shapes only: these are not timings)."""

from __future__ import annotations

import contextlib
import io
import json

import numba
import numpy as np
import pytest

from analogsim import __version__
from analogsim import benchmarking as bm
from analogsim.cli.main import main
from analogsim.errors import ParameterError


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(list(argv))
        except SystemExit as exit_:  # argparse errors
            status = exit_.code
    return status, out.getvalue(), err.getvalue()


# ---------------------------------------------------------------------- info
def test_info_reports_versions_backends_and_threads():
    status, out, _ = run_cli("info")
    assert status == 0
    assert f"analogsim {__version__}" in out
    assert f"numpy          {np.__version__}" in out
    assert f"numba          {numba.__version__}" in out
    for heading in ("python", "scipy", "h5py", "scikit-learn", "torch", "cupy", "backends:"):
        assert heading in out
    assert "cpu            available" in out
    assert "numba.cuda" in out
    assert "Chip(backend='cuda')" in out
    assert f"numba          {numba.get_num_threads()} of" in out
    assert "threading layer: " in out and "not initialised" not in out


def test_info_json_is_machine_readable():
    status, out, _ = run_cli("info", "--json")
    report = json.loads(out)
    assert status == 0
    assert report["analogsim"] == __version__
    assert report["packages"]["numpy"] == np.__version__
    assert report["backends"]["cpu"].startswith("available")
    assert report["threads"]["numba_threads"] == numba.get_num_threads()
    assert "count_precision='int8'" in report["backends"]


def test_info_says_whether_int8_counts_can_run_and_pay_off(monkeypatch):
    from analogsim.cli import info

    monkeypatch.setattr(info, "package_version", lambda names: None)
    assert info._int8_counts_status().startswith("no faster than fp32: PyTorch is not "
                                                 "installed")
    monkeypatch.setattr(info, "package_version", lambda names: "2.2.0+cpu")
    assert info._int8_counts_status().startswith("no faster than fp32: PyTorch 2.2.0+cpu "
                                                 "predates its CPU int8 matmul")
    monkeypatch.setattr(info, "package_version", lambda names: "2.13.0")
    monkeypatch.setattr(info, "cpu_flags", lambda: {"avx2", "avx512_vnni"})
    assert info._int8_counts_status() == ("available (PyTorch 2.13.0; int8 dot products: "
                                          "avx512_vnni)")
    monkeypatch.setattr(info, "cpu_flags", lambda: {"avx2"})
    assert "no int8 dot products" in info._int8_counts_status()
    monkeypatch.setattr(info, "cpu_flags", set)
    assert info._int8_counts_status().endswith("CPU flags unknown)")


# ---------------------------------------------------------------------- bench
@pytest.fixture(scope="module")
def quick_bench(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "out" / "bench.json"
    status, out, err = run_cli("bench", "--quick", "--json", str(path))
    return status, out, err, json.loads(path.read_text())


def test_bench_quick_prints_the_ratio_table(quick_bench):
    status, out, _, _ = quick_bench
    assert status == 0
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("| operation"))
    for column in bm.TABLE_COLUMNS:
        assert column in header
    rows = [line for line in lines if line.startswith("| ") and line is not header]
    labels = [bm.OPERATIONS[name].label for name in bm.available_operations()]
    for rows_, cols in bm.QUICK_SHAPES:
        shape = f"{bm.QUICK_BATCH} x {rows_}x{cols}"
        assert sorted(label for label in labels
                      if any(label in row and shape in row for row in rows)) == sorted(labels)
    assert any("threads: numba" in line for line in lines)


def test_bench_json_carries_config_versions_and_ratios(quick_bench):
    *_, document = quick_bench
    assert document["analogsim"] == __version__
    assert document["config"]["quick"] is True
    assert document["threads"]["numba_threads"] >= 1
    results = document["results"]
    assert len(results) == len(bm.QUICK_SHAPES) * len(bm.available_operations())
    for row in results:
        assert len(row["times_ms"]) == (1 if row["operation"] == "update-exact"
                                        else bm.QUICK_REPEATS)
        assert row["ratio"] == pytest.approx(row["ms"] / row["reference_ms"])
        assert (row["passed"] is None) == (row["target"] is None)
    assert all(row["extra"]["mean_pulses"] > 0 for row in results
               if row["operation"].startswith("update"))


@pytest.mark.parametrize(("argv", "message"), [
    (("--shapes", "1024"), "ROWSxCOLS"),
    (("--shapes", "64x0"), "ROWSxCOLS"),
    (("--repeats", "0"), "--repeats: must be an integer >= 1; got '0'"),
    (("--batch", "many"), "--batch: must be an integer >= 1; got 'many'"),
    (("--operations", "forward,backward"), "must be a comma-separated list of forward,"),
    (("--devices", "sram"), "must be a comma-separated list of reram, pcm; got 'sram'"),
    (("--threads", "100000"), "--threads: must be in [1, "),
    (("--prior-updates", "-3"), "--prior-updates: must be an integer >= 0; got '-3'"),
])
def test_bench_bad_arguments_are_named(argv, message):
    status, out, err = run_cli("bench", "--quick", *argv)
    assert status == 2
    assert message in err
    assert "| operation" not in out


def test_bench_without_pytorch_leaves_out_int8_counts_or_names_the_need(monkeypatch):
    from analogsim.kernels import count_means_int8

    monkeypatch.setattr(count_means_int8, "torch_available", lambda: False)
    assert "update-fast-int8" not in bm.available_operations()
    status, _, err = run_cli("bench", "--quick", "--operations", "update-fast-int8")
    assert status == 2
    assert "update-fast-int8 needs PyTorch, which is not installed" in err


def test_bench_times_update_tiles_in_use_after_prior_updates():
    status, out, _ = run_cli("bench", "--quick", "--operations", "update-fast", "--devices",
                             "pcm", "--prior-updates", "2")
    assert status == 0
    assert "each tile timed after 2 fast updates" in out
    rows = [line for line in out.splitlines() if line.startswith("| update: fast sampler")]
    assert len(rows) == len(bm.QUICK_SHAPES)


def test_age_tile_applies_that_many_updates_with_fresh_errors():
    workload = bm.Workload.make(*bm.WARMUP_SHAPE)

    def aged(updates: int) -> np.ndarray:
        tile = bm.make_tile("update-fast", workload, "pcm")
        bm.age_tile(tile, workload, updates)
        return tile.arrays.conductance.copy()

    fresh, once, thrice = aged(0), aged(1), aged(3)
    assert not np.array_equal(once, fresh)
    assert not np.array_equal(thrice, once)
    np.testing.assert_array_equal(aged(3), thrice)  # seeded
    tile = bm.make_tile("update-fast", workload, "pcm")
    with pytest.raises(ParameterError, match=r"'updates' parameter of age_tile must be an "
                                             r"integer in \[0, inf\)\. Got -1 instead"):
        bm.age_tile(tile, workload, -1)
    row = bm.measure("update-fast", *bm.WARMUP_SHAPE, device="pcm", repeats=1,
                     prior_updates=2)
    assert row.extra["prior_updates"] == 2


# ---------------------------------------------------------------------- measurement helpers
def test_time_interleaved_alternates_reference_and_operation():
    calls: list[str] = []
    times, reference_times = bm.time_interleaved(lambda: calls.append("op"),
                                                 lambda: calls.append("ref"), 3,
                                                 reference_per_round=2)
    assert calls == ["ref", "ref", "op"] * 3
    assert len(times) == 3 and len(reference_times) == 6


def test_measurement_ratio_and_verdict():
    row = bm.Measurement("forward", "reram", 8, 16, 4, times_ms=(3.0, 5.0, 4.0),
                         reference_times_ms=(2.0, 1.0, 3.0))
    assert row.ms == 4.0 and row.reference_ms == 2.0
    assert row.ratio == 2.0 and row.min_ratio == 3.0
    assert row.passed is True
    slow = bm.Measurement("forward-no-noise", "reram", 8, 16, 4, (3.0,), (2.0,))
    assert slow.passed is False
    assert "FAIL" in bm.format_table([row, slow]).splitlines()[-1]
    exact = bm.Measurement("update-exact", "reram", 8, 16, 4, (3.0,), (2.0,))
    assert exact.passed is None and bm.table_row(exact)[-1] == "-"
