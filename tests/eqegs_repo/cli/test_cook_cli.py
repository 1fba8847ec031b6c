"""eqegs cook and the cooking part of eqegs demo."""
from eqegs_repo.cli.main import main


def test_demo_cooks_and_compares_with_truth_then_cook_command(tmp_path, capsys):
    target = tmp_path / "demo"
    assert main(["demo", str(target)]) == 0
    out = capsys.readouterr().out
    assert "tau_true" in out and "f_q_true" in out and "recovered within 2 sigma" in out
    noisy, noise_free = out.split("cooking every sample")[1].split("without counting noise")
    rows = [line.split() for line in noisy.splitlines() if line.startswith("2025")]
    assert len(rows) == 5  # 3 + 2 samples, the backgrounds are not cooked
    free = [line.split() for line in noise_free.split("recovered within")[0].splitlines() if line.startswith("2025")]
    assert len(free) == 5 and all(abs(float(row[5])) < 0.5 for row in free)  # tau_bias_sigma of the noise-free copy
    assert "about 4.8 of 5" in out and (target / "noise-free" / "UserData").is_dir()
    root = str(target / "UserData" / "u0000000" / "EQEGS")
    cache = str(target / "cache")
    assert main(["cook", root, "2025A1234", "S001", "--cache-url", cache, "--set", "q_min=10.5", "-v"]) == 0
    out = capsys.readouterr().out
    assert "tau = " in out and "'q_range': {'q_min': 10.5}" in out
    assert main(["cook", root, "2025A1234", "S001", "--step", "reconstruction", "--no-cache"]) == 0
    out = capsys.readouterr().out
    assert "reconstruction: image 64 x 48 px from 1024 frames; ROI x" in out and "(no cache)" in out
    assert "roi_mode" not in out                  # the dataset only with -v
    assert main(["cook", root, "2025A1234", "S001", "--cache-url", cache, "--set", "q_min=20"]) == 1
    assert "q_range.q_min = 20 (from override)" in capsys.readouterr().err
