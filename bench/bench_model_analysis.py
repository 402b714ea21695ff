"""Benchmark: analysing a SavedModel with 50 embedding features (target: under 5 s).

Usage (from the repository root):

    PYTHONPATH=$PWD/components .venv/bin/python bench/bench_model_analysis.py [--features 50] [--reps 3]

Builds two models in a temporary directory, then times `analyze_model` on each:

  keras_export   a Keras 3 functional model, one Embedding per int64 input, exported
                 with `model.export()`: graph tracing plus black-box probing of every
                 lookup (the signature takes the features directly)
  examples_module  the demo's layout: a tf.Module whose signature parses serialized
                 tf.Examples and calls the same Keras model: graph tracing only

The figures are the analysis alone, in a process that has already imported
TensorFlow (the import is timed and printed separately). The exit status is 1 when
the slowest analysis exceeds the target.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time

TARGET_SECONDS = 5.0


def _keras_model(num_features: int):
    import keras

    keras.utils.set_random_seed(0)
    names = [f"feature_{i:02d}_xf" for i in range(num_features)]
    inputs = {name: keras.Input(shape=(), dtype="int64", name=name) for name in names}
    embedded = [
        keras.layers.Embedding(100 + i, 4, name=f"{name}_embedding")(inputs[name])
        for i, name in enumerate(names)
    ]
    hidden = keras.layers.Concatenate()(embedded)
    output = keras.layers.Dense(1, name="click_probability")(hidden)
    return names, keras.Model(inputs=inputs, outputs=output)


def _examples_module(names, model):
    import tensorflow as tf

    class ExamplesModule(tf.Module):
        def __init__(self):
            super().__init__()
            self.model = model
            self._spec = {name: tf.io.FixedLenFeature([], tf.int64) for name in names}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve(self, examples):
            features = tf.io.parse_example(examples, self._spec)
            return {"click_probability": self.model(features)}

    return ExamplesModule()


def _time(analyse, path: str, probe: bool, reps: int):
    seconds = []
    for _ in range(reps):
        started = time.perf_counter()
        analysis = analyse(path, probe=probe)
        seconds.append(time.perf_counter() - started)
    return seconds, analysis


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    import tensorflow as tf

    from embedding_guard.bounds import model_analysis

    print(
        f"import tensorflow + embedding_guard.bounds.model_analysis: {time.perf_counter() - started:.2f} s"
    )

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        names, model = _keras_model(args.features)
        keras_dir = f"{tmp}/keras_export"
        model.export(keras_dir, verbose=False)
        module = _examples_module(names, model)
        module_dir = f"{tmp}/examples_module"
        tf.saved_model.save(module, module_dir, signatures={"serving_default": module.serve})
        print(f"build + export both models: {time.perf_counter() - started:.2f} s")

        worst = 0.0
        for label, path, probe in (
            ("keras_export, graph only", keras_dir, False),
            ("keras_export, graph + probe", keras_dir, True),
            ("examples_module, graph (no probe possible)", module_dir, True),
        ):
            seconds, analysis = _time(model_analysis.analyze_model, path, probe, args.reps)
            # The sizes a run takes from the model, as orchestration reads them.
            sizes = {
                feature: lookup.feature_input_dim
                for feature, lookup in analysis.governing_lookups().items()
            }
            expected = {name: 100 + i for i, name in enumerate(names)}
            correct = "all sizes correct" if sizes == expected else f"WRONG sizes: {sizes}"
            worst = max(worst, max(seconds))
            print(
                f"{label}: {len(analysis.lookups)} lookups, {correct}; "
                f"min {min(seconds):.2f} s, median {statistics.median(seconds):.2f} s, "
                f"max {max(seconds):.2f} s over {args.reps} runs ({analysis.probe_note})"
            )
            if sizes != expected:
                return 1
    verdict = "PASS" if worst < TARGET_SECONDS else "FAIL"
    print(f"{verdict}: slowest analysis {worst:.2f} s, target < {TARGET_SECONDS:.0f} s")
    return 0 if worst < TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
