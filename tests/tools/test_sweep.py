from splitleak.tools import sweep
from tests.conftest import splitleak


def test_depth_table_has_a_row_per_split_with_identification():
    scores = {"n": 64, "mse": 0.01, "ssim": 0.9, "top1": 0.97, "top5": 1.0, "median_rank": 1.0,
              "chance_top1": 1 / 64, "mean_image_mse": 0.056, "mean_image_top1": 1 / 64}
    rows = [{"split_after": k, "activation_shape": shape, "bytes_per_frame": size,
             "val_accuracy": 0.976, "tflite_ms": 0.5, "blackbox": scores | {"n": 1000},
             "blackbox_subset": scores, "whitebox": scores,
             "whitebox_prior": scores | {"top1": 0.5}}
            for k, shape, size in ((1, [33, 33, 32], 139_442), (4, [1, 1, 32], 178))]
    text = sweep.table(rows).splitlines()
    assert len(text) == 2 + len(rows)
    assert text[2].startswith("| 1 | 33x33x32 | 139,442 |") and "**0.970** (of 1,000)" in text[2]
    assert text[3].startswith("| 4 | 1x1x32 | 178 |") and "**0.500**" in text[3]
    assert all(line.count("|") == text[0].count("|") for line in text)


def test_sweep_refuses_bad_settings_in_one_line():
    result = splitleak("sweep", "depth", "--whitebox-limit", 0)
    assert result.returncode == 2 and "--whitebox-limit must be a positive integer" in result.stderr
    result = splitleak("sweep", "depth", "--splits", 5)
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_depth_plot_labels_each_attack_with_its_image_count(tmp_path):
    scores = {"n": 64, "top1": 0.5}
    rows = [{"split_after": k, "bytes_per_frame": size, "blackbox": scores | {"n": 1000},
             "blackbox_subset": scores, "whitebox": scores, "whitebox_prior": scores}
            for k, size in ((1, 139_442), (4, 178))]
    path = sweep.save_plot(tmp_path, rows)
    assert path.is_file() and path.stat().st_size > 10_000
