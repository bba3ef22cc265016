"""Fairness on the eval split: the per-group rates the report shows are the candidate's own
(checked against numpy on its predictions), and a model that treats one group much worse
is not blessed, with the group and the gap named."""

import glob
import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf

from components.group_rates import group_rates
from datagen import taxi
from pipelines import local_runner
from reports.artifacts import RunArtifacts
from reports.model_sections import slices_section
from settings.config import load_config
from settings.yaml_files import deep_merge
from tests.conftest import TAXI_CONFIG, small_overrides
from tests.e2e.test_pipeline_e2e import oldest_output

pytestmark = pytest.mark.e2e


def eval_predictions(config) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, the candidate's scores and the company of every eval row of the first run."""
    model = tf.saved_model.load(os.path.join(oldest_output(config, "Trainer", "model"), "Format-Serving"))
    serve = model.signatures["serving_default"]
    files = glob.glob(os.path.join(oldest_output(config, "CsvExampleGen", "examples"), "Split-eval", "*"))
    labels, scores, groups = [], [], []
    for batch in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(256):
        out = serve(examples=batch)
        scores += list(np.asarray(next(iter(out.values()))).reshape(-1))
        for record in batch.numpy():
            example = tf.train.Example.FromString(record).features.feature
            labels.append(example[config.label].int64_list.value[0])
            company = example["company"].bytes_list.value
            groups.append(company[0].decode() if company else "")  # missing: in no slice
    return np.array(labels), np.array(scores), np.array(groups)


def test_reported_group_rates_are_the_candidates_own(first_run, tmp_path):
    config, _ = first_run
    labels, scores, groups = eval_predictions(config)
    evaluation = oldest_output(config, "Leaderboard", "evaluation")
    rates = group_rates(evaluation, ["company"], "network")
    assert {r.threshold for r in rates} == {0.25, 0.5}  # the decision threshold and the reported one
    assert {r.group for r in rates} == set(groups) - {""}
    for r in rates:
        y, yes = labels[groups == r.group], scores[groups == r.group] > r.threshold
        assert r.size == len(y) and r.positives == y.sum()
        # a score within float error of the threshold may fall either side: one row at most
        assert abs(r.fp - np.sum(yes & (y == 0))) <= 1 and abs(r.fn - np.sum(~yes & (y == 1))) <= 1, r
        if r.size >= 40:
            assert r.fpr == pytest.approx(np.mean(yes[y == 0]), abs=1.5 / max(1, (y == 0).sum()))
            assert r.positive_rate == pytest.approx(np.mean(yes), abs=1.5 / len(y))
    big = max((r for r in rates if r.threshold == 0.25), key=lambda r: r.size)
    assert 0 < big.positive_rate < 1 and 0 < big.fnr < 1  # the decision threshold cuts through the scores
    artifacts = RunArtifacts(run="first", by_component={"Leaderboard": {"ModelEvaluation": [evaluation]}})
    page = slices_section(artifacts, config, str(tmp_path))
    row = f"<td>company={big.group}</td><td>0.2500</td><td>{int(big.size)}</td><td>{int(big.positives)}</td>"
    assert row + f"<td>{big.fpr:.4f}</td><td>{big.fnr:.4f}</td><td>{big.positive_rate:.4f}</td>" in page
    # the clean model is within the gate's FPR limit
    assert re.search(
        r"<td>FPR gap</td><td>Company \d+ vs Company \d+</td><td>0\.\d{4}</td><td>0\.3000</td><td>ok</td>", page
    )


NOISY = "Company 2"


def test_a_model_unfair_to_one_group_is_not_blessed_and_the_gap_is_named(tmp_path):
    """Labels of one company are coin flips: the model learns that its riders tip far more often, and at
    the decision threshold wrongly suggests big tips to most of them. Every other bar is cleared."""
    # no tuner and no distilled model: neither bears on the gate, and the suite has a time budget
    overrides = deep_merge(small_overrides(str(tmp_path), rows=3000, seed=7),
                           {"evaluation": {"fairness": {"min_group_size": 30}}, "tuning": {"max_trials": 0},
                            "simplification": None})  # fmt: skip
    config = load_config(TAXI_CONFIG, overrides)
    frame = taxi.generate(3000, seed=7)
    noisy = frame["company"] == NOISY
    frame.loc[noisy, "big_tip"] = np.random.default_rng(0).integers(0, 2, int(noisy.sum()))
    taxi.write_csv(frame, config.data.path)
    summary = local_runner.run(config.replace(data=config.data.replace(generate=None)))

    assert summary.blessed is False and summary.pushed_model is None
    assert not os.path.exists(config.pipeline.serving_dir) or os.listdir(config.pipeline.serving_dir) == []
    [blessing] = glob.glob(os.path.join(config.pipeline.root, "BlessingGate", "blessing", "*", "NOT_BLESSED"))
    with open(blessing) as f:
        decision = json.load(f)
    assert decision["failed"] == ["network"] and decision["winner"] is None  # the one candidate, and why:
    assert all(f.startswith("network: fairness: ") for f in summary.failures), summary.failures  # nothing else
    [line] = [f for f in summary.failures if f.startswith("network: fairness: company: false positive rate")]
    assert line.startswith(f"network: fairness: company: false positive rate of {NOISY} is ")
    assert line.endswith("over the largest allowed 0.3") and "at threshold 0.25" in line
    gap = float(line.split("a gap of ")[1].split()[0])
    assert gap > 0.3
