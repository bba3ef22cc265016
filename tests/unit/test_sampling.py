"""One-pass uniform samples of TFRecord rows (models/sampling.py) and the intervals of a metric measured on one
(models/sample_intervals.py)."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from models import sample_intervals, sampling

pytestmark = pytest.mark.unit


def write_indices(directory, counts: list[int]) -> list[str]:
    """Files of records `b"<i>"`, i counting on across the files; their patterns."""
    i, patterns = 0, []
    for f, count in enumerate(counts):
        path = str(directory / f"part-{f}.gz")
        with tf.io.TFRecordWriter(path, options="GZIP") as writer:
            for _ in range(count):
                writer.write(str(i).encode())
                i += 1
        patterns.append(path)
    return patterns


def test_a_sample_is_uniform_over_every_file_in_file_order_and_the_count_is_exact(tmp_path):
    patterns = write_indices(tmp_path, [30_000, 12_345, 7_655])  # 50,000, the drawn spread over all three
    drawn, total = sampling.uniform_records([str(tmp_path / "part-*.gz")], 5_000, seed=3)
    index = np.array([int(r) for r in drawn])
    assert total == 50_000 == sampling.count_records(patterns)
    assert len(index) == 5_000 == len(set(index)) and (np.diff(index) > 0).all()  # without replacement, in order
    per_tenth = np.bincount(index // 5_000, minlength=10)  # 500 expected in each tenth of the rows
    assert per_tenth.min() > 400 and per_tenth.max() < 600, per_tenth
    again, _ = sampling.uniform_records(patterns, 5_000, seed=3)
    other, _ = sampling.uniform_records(patterns, 5_000, seed=4)
    assert again == drawn and other != drawn  # seeded


def test_files_under_the_cap_are_read_as_they_are_and_over_it_a_sample_file_is_written(tmp_path):
    patterns = write_indices(tmp_path, [2_000])
    assert sampling.sampled_files(patterns, 2_000, str(tmp_path / "s")) == (patterns, 2_000, 2_000)
    files, rows, total = sampling.sampled_files(patterns, 500, str(tmp_path / "s"))
    assert (rows, total) == (500, 2_000) and files != patterns and sampling.count_records(files) == 500
    assert sampling.uniform_records([], 10) == ([], 0)


def test_a_candidates_inputs_are_capped_train_and_eval_apart(tmp_path):
    @dataclasses.dataclass(frozen=True)
    class Inputs:
        train_files: list
        eval_files: list

    (tmp_path / "train").mkdir()
    (tmp_path / "eval").mkdir()
    train, evaluation = write_indices(tmp_path / "train", [3_000]), write_indices(tmp_path / "eval", [800])
    sampled, rows = sampling.sampled_inputs(Inputs(train, evaluation), 1_000, 1_000, str(tmp_path / "s"))
    assert rows == {"train_rows": 3_000, "fitted_rows": 1_000, "eval_rows": 800, "validated_rows": 800}
    assert sampling.count_records(sampled.train_files) == 1_000 and sampled.eval_files == evaluation


def test_the_auc_interval_covers_the_spread_of_the_auc_over_samples():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    positives, negatives = 300, 700
    aucs = []
    for _ in range(400):
        scores = np.concatenate([rng.normal(1.2, 1, positives), rng.normal(0, 1, negatives)])
        aucs.append(roc_auc_score(np.r_[np.ones(positives), np.zeros(negatives)], scores))
    auc = float(np.mean(aucs))
    low, high = sample_intervals.auc_interval(auc, positives, negatives)
    assert low < auc < high
    assert (high - low) / (2 * sample_intervals.Z95) == pytest.approx(np.std(aucs), rel=0.15)
    covered = np.mean([low <= a <= high for a in aucs])
    assert 0.9 < covered <= 1.0


def test_intervals_exist_only_where_a_closed_form_does():
    assert sample_intervals.interval("auc", 0.8, 1000, positives=300) is not None
    assert sample_intervals.interval("auc", 0.8, 1000, positives=None) is None  # not binary 0/1 labels
    low, high = sample_intervals.interval("sparse_categorical_accuracy", 0.5, 10_000)
    assert high - low == pytest.approx(2 * 1.96 * 0.005, rel=1e-3)
    assert sample_intervals.interval("recall", 0.5, 10_000, positives=100)[1] - 0.5 == pytest.approx(0.098, rel=1e-2)
    for metric in ("root_mean_squared_error", "precision", "auc_precision_recall"):
        assert sample_intervals.interval(metric, 0.5, 10_000, positives=100) is None


def test_the_leaderboard_scores_a_sample_of_a_large_eval_split_and_counts_its_positives(tmp_path):
    from tfx.types import standard_artifacts

    from components.leaderboard import eval_sample

    split = tmp_path / "examples" / "Split-eval"
    split.mkdir(parents=True)
    labels = np.random.default_rng(7).random(5_000) < 0.3  # not the sampler's seed: its keys would be these
    with tf.io.TFRecordWriter(str(split / "data.gz"), options="GZIP") as writer:
        for i, label in enumerate(labels):
            example = tf.train.Example()
            example.features.feature["label"].int64_list.value.append(int(label))
            example.features.feature["i"].int64_list.value.append(i)
            writer.write(example.SerializeToString())
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "examples")
    examples.split_names = '["eval"]'

    whole, none = eval_sample([examples], 5_000, "label", str(tmp_path / "s"))
    assert none is None and len(whole) == 1 and whole[0].startswith(str(split))
    assert eval_sample([examples], None, "label", str(tmp_path / "s"))[1] is None
    files, sample = eval_sample([examples], 1_000, "label", str(tmp_path / "s"))
    drawn = [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]
    picked = [e.features.feature["i"].int64_list.value[0] for e in drawn]
    assert sample == {"rows": 1_000, "split_rows": 5_000, "seed": 0, "positives": int(labels[picked].sum())}
    assert 200 < sample["positives"] < 400 and max(picked) > 4_000  # the whole split, not its head


def test_a_large_tables_epochs_validate_on_a_sample_that_lasts_as_long_as_training(tmp_path):
    """`validation_split`: the eval split itself for a plan that validates on every row; past VALIDATION_ROWS a
    uniform sample of that many rows, in a directory removed after the block."""
    from types import SimpleNamespace

    from models.training import training_plan, validation_split

    patterns = write_indices(tmp_path, [3_000, 2_000])
    args = SimpleNamespace(eval_files=patterns, custom_config={"seed": 2})
    whole = training_plan(80_000, 5_000)
    with validation_split(args, whole) as files:
        assert files == patterns
    plan = dataclasses.replace(training_plan(1_200_000, 300_000), validation_rows=1_000)
    with validation_split(args, plan) as files:
        drawn = [int(r) for r in tf.data.TFRecordDataset(files, compression_type="GZIP").as_numpy_iterator()]
        assert len(drawn) == 1_000 and max(drawn) >= 3_000  # from both files
    assert not any(tf.io.gfile.exists(f) for f in files)
