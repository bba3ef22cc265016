"""The command-line modules' shared entry: a bad config is one line naming the problem, and exit 2."""

import subprocess
import sys

import pytest
import yaml

from settings import entry
from settings.config import ConfigError
from tests.conftest import REPO

pytestmark = pytest.mark.unit


@pytest.fixture
def bad_config(tmp_path) -> str:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"extends": f"{REPO}/configs/taxi.yaml", "trainer": {"learning_rat": 0.1}}))
    return str(path)


# cheap to start: none of these imports TensorFlow before it has read its config
@pytest.mark.parametrize("module, flag", [
    ("reports.run_report", "--config"), ("metadata.lineage", "--config"), ("deploy.gcp_setup", "--profile"),
    ("pipelines.batch_prediction", "--config"),
])  # fmt: skip
def test_a_bad_config_exits_2_naming_the_key(module, flag, bad_config):
    extra = {"pipelines.batch_prediction": ["--input", "x.csv", "--output", "out"], "metadata.lineage": ["runs"]}
    done = subprocess.run([sys.executable, "-m", module, flag, bad_config, *extra.get(module, [])], cwd=REPO, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    [line] = [line for line in done.stderr.splitlines() if line.startswith("config error: ")]
    assert line.startswith(f"config error: {bad_config}: unknown key 'trainer.learning_rat' (allowed here: ")
    assert "Traceback" not in done.stderr


def test_the_entry_loads_a_runs_workdir_and_turns_a_config_error_into_exit_2(tmp_path, capsys):
    parser = entry.parser("doc", workdir="a run's workdir")
    args = parser.parse_args(["--workdir", str(tmp_path / "w")])
    assert args.config == entry.DEFAULT_CONFIG
    config = entry.load(args, {"trainer": {"train_steps": 7}}, path=f"{REPO}/configs/taxi.yaml", workdir=args.workdir)
    assert config.pipeline.root.startswith(str(tmp_path / "w")) and config.trainer.train_steps == 7

    @entry.config_errors_exit
    def main(argv):
        raise ConfigError("c.yaml: 'x' is bad")

    assert main([]) == 2
    assert capsys.readouterr().err == "config error: c.yaml: 'x' is bad\n"


def test_a_profile_flag_is_required():
    with pytest.raises(SystemExit):
        entry.parser("doc", None, flag="--profile").parse_args([])


def test_a_vertex_profiles_workdir_is_a_replays_its_gs_paths_under_gcs(tmp_path):
    """`make serve CONFIG=configs/vertex-smoke.yaml WORKDIR=<a make vertex-local workdir>` reads what the replay
    pushed: the profile's gs:// paths, not the run layout a --workdir gives a local config."""
    args = entry.parser("doc", None, flag="--profile", workdir="w").parse_args(
        ["--profile", f"{REPO}/configs/vertex-smoke.yaml", "--workdir", str(tmp_path)]
    )
    config = entry.load(args, workdir=args.workdir)
    gcs = str(tmp_path / "gcs")
    assert config.pipeline.serving_dir == f"{gcs}/example-mlops-dev-pipeline/smoke/serving"
    assert config.pipeline.root == f"{gcs}/example-mlops-dev-pipeline/smoke/root"
    assert config.data.path == f"{gcs}/example-mlops-dev-data/taxi-smoke"
    assert entry.load(args).pipeline.serving_dir == "gs://example-mlops-dev-pipeline/smoke/serving"
